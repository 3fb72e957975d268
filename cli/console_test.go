package cli

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rmm-project/rmm/sim"
	"github.com/rmm-project/rmm/sim/machine"
)

// syncBuffer is a bytes.Buffer safe to write from rmm's goroutines while
// a test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// eventually polls cond every 10 ms for at most d.
func eventually(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, d)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitTrue polls cond for at most d, for goroutines that cannot fail the
// test themselves.
func waitTrue(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
	return true
}

// live is rmm running in the background, in-process, with stdin a pipe
// the test types into and output the test can watch.
type live struct {
	t      *testing.T
	stdin  *io.PipeWriter
	stdout *syncBuffer
	stderr *syncBuffer
	done   chan int
	code   int
}

func (tf *testFleet) start(ctx context.Context, args ...string) *live {
	tf.t.Helper()
	pr, pw := io.Pipe()
	l := &live{t: tf.t, stdin: pw, stdout: &syncBuffer{}, stderr: &syncBuffer{}, done: make(chan int, 1)}
	io := Test(pr, l.stdout, l.stderr)
	env := &Env{IO: io, Getenv: tf.getenv, Providers: DefaultProviders()}
	go func() { l.done <- Main(ctx, append([]string{"-i", tf.inv}, args...), env) }()
	tf.t.Cleanup(func() {
		_ = pw.Close()
		_ = pr.Close()
	})
	return l
}

func (l *live) typeKeys(s string) {
	l.t.Helper()
	if _, err := l.stdin.Write([]byte(s)); err != nil {
		l.t.Fatalf("typing %q: %v", s, err)
	}
}

// waitOut waits until stdout (or stderr) contains want.
func (l *live) waitOut(want string, d time.Duration) {
	l.t.Helper()
	eventually(l.t, fmt.Sprintf("%q on stdout\nstdout:\n%s\nstderr:\n%s", want, l.stdout.String(), l.stderr.String()), d, func() bool {
		return strings.Contains(l.stdout.String(), want)
	})
}

func (l *live) waitErr(want string, d time.Duration) {
	l.t.Helper()
	eventually(l.t, fmt.Sprintf("%q on stderr\nstderr:\n%s", want, l.stderr.String()), d, func() bool {
		return strings.Contains(l.stderr.String(), want)
	})
}

// wait returns rmm's exit code, failing after d.
func (l *live) wait(d time.Duration) int {
	l.t.Helper()
	select {
	case l.code = <-l.done:
		return l.code
	case <-time.After(d):
		l.t.Fatalf("rmm still running after %s\nstdout:\n%s\nstderr:\n%s", d, l.stdout.String(), l.stderr.String())
	}
	return -1
}

// solIdle asserts no real client holds a host's SOL payload.
func solIdle(t *testing.T, h *sim.Host) {
	t.Helper()
	if h.IPMI == nil {
		return
	}
	eventually(t, h.Spec.Name+": SOL payload released", 5*time.Second, func() bool { return h.IPMI.Stats().SOLActive == 0 })
}

func solActive(h *sim.Host) func() bool {
	return func() bool { return h.IPMI.Stats().SOLActive == 1 }
}

// Console text fed by the simulated host (the panic trace it printed
// before, replayed from the BMC's buffer, and a boot banner printed while
// rmm watches) arrives in --capture output.
func TestConsoleCaptureShowsWhatTheHostPrints(t *testing.T) {
	t.Parallel()
	tf := newTestFleet(t, testHost{name: "db1", protocols: "[ipmi]", scenarios: "[panicked]"})
	h := tf.host("db1")
	go func() {
		if waitTrue(5*time.Second, solActive(h)) {
			h.Machine.Console().Feed(machine.BootBanner("db1"))
		}
	}()
	start := time.Now()
	r := tf.rmm("console", "db1", "--capture", "2s")
	if r.code != 0 {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
	for _, w := range []string{"Kernel panic - not syncing: Fatal exception in interrupt", "end Kernel panic", "db1 login: "} {
		if !strings.Contains(r.stdout, w) {
			t.Errorf("capture lacks %q:\n%s", w, r.stdout)
		}
	}
	if el := time.Since(start); el < 2*time.Second {
		t.Errorf("capture of 2s ended after %s", el)
	}
	solIdle(t, h)
}

// --until stops as soon as the pattern shows, well before the bound; a
// pattern that never shows is exit 1 with a message, and what was seen is
// still printed.
func TestConsoleCaptureUntil(t *testing.T) {
	t.Parallel()
	tf := newTestFleet(t, testHost{name: "web1", protocols: "[ipmi]"})
	h := tf.host("web1")
	t.Run("matches", func(t *testing.T) {
		go func() {
			if waitTrue(5*time.Second, solActive(h)) {
				time.Sleep(200 * time.Millisecond)
				h.Machine.Console().Feed(machine.BootBanner("web1") + "\r\nthis comes after the prompt\r\n")
			}
		}()
		start := time.Now()
		r := tf.rmm("console", "web1", "--capture", "20s", "--until", `web1 login: `)
		if r.code != 0 {
			t.Fatalf("exit %d\n%s", r.code, r.stderr)
		}
		if el := time.Since(start); el > 10*time.Second {
			t.Errorf("--until matched but the capture ran %s of its 20s", el)
		}
		if !strings.Contains(r.stdout, "Reached target multi-user.target") || !strings.HasSuffix(r.stdout, "web1 login: ") &&
			!strings.Contains(r.stdout, "web1 login: ") {
			t.Errorf("capture:\n%q", r.stdout)
		}
		solIdle(t, h)
	})
	t.Run("never matches", func(t *testing.T) {
		h.Machine.Console().Feed("still booting\r\n")
		r := tf.rmm("console", "web1", "--capture", "1500ms", "--until", `login:\s*$`)
		if r.code != ExitFailed {
			t.Fatalf("exit %d, want %d\n%s", r.code, ExitFailed, r.stderr)
		}
		if !strings.Contains(r.stderr, `--until "login:\\s*$" did not match within 1.5s`) || !strings.Contains(r.stderr, "web1 (bmc "+h.Spec.Addr.String()+")") {
			t.Errorf("stderr:\n%s", r.stderr)
		}
		if !strings.Contains(r.stdout, "still booting") {
			t.Errorf("what was seen is not printed:\n%s", r.stdout)
		}
		solIdle(t, h)
	})
}

// Several hosts: one file each, in parallel, with a summary line and the
// failed host's own error; without --out-dir it is a usage error.
func TestConsoleCaptureSeveralHosts(t *testing.T) {
	t.Parallel()
	tf := newTestFleet(t,
		testHost{name: "app1", protocols: "[ipmi]"},
		testHost{name: "app2", protocols: "[ipmi]", scenarios: "[panicked]"},
		testHost{name: "app3", protocols: "[ipmi]", scenarios: "[dead]"},
	)
	tf.host("app1").Machine.Console().Feed("app1 says hello\r\n")
	dir := filepath.Join(tf.dir, "consoles")

	r := tf.rmm("console", "all", "--capture", "1s")
	if r.code != ExitUsage || !strings.Contains(r.stderr, "--out-dir") {
		t.Fatalf("several hosts without --out-dir: exit %d\n%s", r.code, r.stderr)
	}

	start := time.Now()
	r = tf.rmm("console", "all", "--capture", "2s", "--timeout", "2s", "--out-dir", dir)
	if r.code != ExitFailed {
		t.Fatalf("exit %d, want %d\n%s", r.code, ExitFailed, r.stderr)
	}
	if el := time.Since(start); el > 12*time.Second {
		t.Errorf("three 2s captures took %s: not in parallel", el)
	}
	want := map[string]string{"app1": "app1 says hello", "app2": "Kernel panic - not syncing"}
	for host, text := range want {
		b, err := os.ReadFile(filepath.Join(dir, host+".log"))
		if err != nil {
			t.Fatalf("%s: %v", host, err)
		}
		if !strings.Contains(string(b), text) {
			t.Errorf("%s.log lacks %q:\n%s", host, text, b)
		}
		for other, otext := range want {
			if other != host && strings.Contains(string(b), otext) {
				t.Errorf("%s.log has %s's output", host, other)
			}
		}
		if st, _ := os.Stat(filepath.Join(dir, host+".log")); st.Mode().Perm() != 0o600 {
			t.Errorf("%s.log mode %v, want 0600 (consoles show secrets people type)", host, st.Mode().Perm())
		}
		if !strings.Contains(r.stderr, host+": ") || !strings.Contains(r.stderr, filepath.Join(dir, host+".log")) {
			t.Errorf("stderr does not report %s's file:\n%s", host, r.stderr)
		}
	}
	for _, w := range []string{"app3 (bmc " + tf.host("app3").Spec.Addr.String() + ")", "1 of 3 hosts failed"} {
		if !strings.Contains(r.stderr, w) {
			t.Errorf("stderr lacks %q:\n%s", w, r.stderr)
		}
	}
	for _, n := range []string{"app1", "app2"} {
		solIdle(t, tf.host(n))
	}
}

// Interactive, stdin a pipe: host output appears as it comes, keys reach
// the host in order (the escape character mid-line is an ordinary key),
// &? lists the escapes, &B sends a break and keys still flow, &. quits
// and closes the SOL session.
func TestConsoleInteractiveKeysAndEscapes(t *testing.T) {
	t.Parallel()
	tf := newTestFleet(t, testHost{name: "db2", protocols: "[ipmi]"})
	h := tf.host("db2")
	logFile := filepath.Join(tf.dir, "db2-console.log")
	l := tf.start(context.Background(), "console", "db2", "--log", logFile)
	l.waitErr("connected to db2 (bmc "+h.Spec.Addr.String()+") via IPMI SOL on "+h.IPMIAddr().String(), 10*time.Second)
	eventually(t, "sol active", 5*time.Second, solActive(h))

	h.Machine.Console().Feed(machine.BootBanner("db2"))
	l.waitOut("db2 login: ", 5*time.Second)

	l.typeKeys("root\r")
	eventually(t, "keys reach the host", 5*time.Second, func() bool { return h.Machine.Console().Typed() == "root\r" })
	l.typeKeys("make && echo a&b\r")
	l.typeKeys("&?")
	l.waitErr("&.  quit", 5*time.Second)
	l.typeKeys("&&literal\r&B")
	l.typeKeys("after break\r")
	want := "root\rmake && echo a&b\r&literal\rafter break\r"
	eventually(t, "every key reaches the host", 5*time.Second, func() bool { return h.Machine.Console().Typed() == want })
	l.waitOut("after break", 5*time.Second) // the host echoes

	l.typeKeys("&.")
	if code := l.wait(10 * time.Second); code != 0 {
		t.Fatalf("exit %d after &.\n%s", code, l.stderr.String())
	}
	if got := h.Machine.Console().Typed(); got != want {
		t.Errorf("host received %q, want %q (the escapes must not reach it)", got, want)
	}
	solIdle(t, h)
	if !strings.Contains(l.stderr.String(), "console to db2 closed") {
		t.Errorf("stderr:\n%s", l.stderr.String())
	}

	b, err := os.ReadFile(logFile)
	if err != nil {
		t.Fatal(err)
	}
	log := string(b)
	if !strings.Contains(log, " # rmm: connected to db2") || !strings.Contains(log, "db2 login: ") || strings.Contains(log, "\x00") {
		t.Errorf("log:\n%s", log)
	}
	for i, line := range strings.Split(strings.TrimSuffix(log, "\n"), "\n") {
		stamp, _, _ := strings.Cut(line, " ")
		if _, err := time.Parse(logStamp, stamp); err != nil {
			t.Errorf("log line %d has no time stamp: %q (%v)", i+1, line, err)
		}
	}
	if st, _ := os.Stat(logFile); st.Mode().Perm() != 0o600 {
		t.Errorf("log mode %v", st.Mode().Perm())
	}
}

// A console held by another session: without --force, rmm says who holds
// it and how to take it over, and changes nothing; with --force it takes
// it, saying whose it was, and keys reach the host.
func TestConsoleSOLBusy(t *testing.T) {
	t.Parallel()
	tf := newTestFleet(t, testHost{name: "busy1", protocols: "[ipmi]", scenarios: "[sol-busy]"})
	h := tf.host("busy1")
	r := tf.rmm("console", "busy1", "--capture", "1s")
	if r.code != ExitFailed {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
	for _, w := range []string{"busy1 (bmc " + h.Spec.Addr.String() + ")", "already active on another session", `user "oncall"`, "192.0.2.77", "hint: ", "--force"} {
		if !strings.Contains(r.stderr, w) {
			t.Errorf("stderr lacks %q:\n%s", w, r.stderr)
		}
	}
	if st := h.IPMI.Stats(); !st.SOLPhantom {
		t.Fatalf("the other session lost the console without --force: %+v", st)
	}

	l := tf.start(context.Background(), "console", "busy1", "--force")
	l.waitErr("connected to busy1", 10*time.Second)
	for _, w := range []string{"--force: taking the console over", `user "oncall"`, "192.0.2.77"} {
		if !strings.Contains(l.stderr.String(), w) {
			t.Errorf("stderr lacks %q:\n%s", w, l.stderr.String())
		}
	}
	l.typeKeys("mine\r")
	eventually(t, "keys reach the host", 5*time.Second, func() bool { return h.Machine.Console().Typed() == "mine\r" })
	if st := h.IPMI.Stats(); st.SOLPhantom || st.SOLActive != 1 {
		t.Errorf("after --force: %+v", st)
	}
	l.typeKeys("\r&.")
	if code := l.wait(10 * time.Second); code != 0 {
		t.Fatalf("exit %d\n%s", code, l.stderr.String())
	}
	solIdle(t, h)
}

// A host reached over Redfish (listed first): rmm lists the console
// transports the BMC advertises, with where each was advertised, and uses
// the IPMI SOL it offers, closing the Redfish session.
func TestConsoleRedfishHostsEveryVendor(t *testing.T) {
	t.Parallel()
	var hosts []testHost
	for _, v := range []string{"dell", "hpe", "lenovo", "supermicro", "dmtf"} {
		hosts = append(hosts, testHost{name: "rf-" + v, protocols: "[redfish, ipmi]", vendor: v, scenarios: "[panicked]"})
	}
	tf := newTestFleet(t, hosts...)
	want := map[string][]string{
		"dell":       {"advertises: SSH (enabled; from CommandShell); IPMI SOL (enabled; from CommandShell)", "using IPMI SOL on " + tf.host("rf-dell").IPMIAddr().String()},
		"hpe":        {"advertises: SSH (enabled; from SerialConsole); IPMI SOL (enabled; from SerialConsole)", "using IPMI SOL on " + tf.host("rf-hpe").IPMIAddr().String()},
		"lenovo":     {"advertises: IPMI SOL (enabled; from SerialConsole); SSH (enabled; from SerialConsole)", "using IPMI SOL on " + tf.host("rf-lenovo").IPMIAddr().String()},
		"supermicro": {`SSH (enabled, port 22, then type "cd system1/sol1; start"; from SerialConsole/SSH)`, fmt.Sprintf("IPMI SOL (enabled, port %d; from SerialConsole/IPMI)", sim.DefaultIPMIPort()), "using IPMI SOL on " + tf.host("rf-supermicro").IPMIAddr().String()},
		"dmtf":       {"advertises: Telnet (enabled; from SerialConsole); SSH (enabled; from SerialConsole); IPMI SOL (enabled; from SerialConsole)", "using IPMI SOL on " + tf.host("rf-dmtf").IPMIAddr().String()},
	}
	for _, h := range hosts {
		v := h.vendor
		t.Run(v, func(t *testing.T) {
			t.Parallel()
			r := tf.rmm("console", h.name, "--capture", "1s")
			if r.code != 0 {
				t.Fatalf("exit %d\n%s", r.code, r.stderr)
			}
			if !strings.Contains(r.stdout, "Kernel panic - not syncing") {
				t.Errorf("no panic trace in the capture:\n%s", r.stdout)
			}
			for _, w := range want[v] {
				if !strings.Contains(r.stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, r.stderr)
				}
			}
			solIdle(t, tf.host(h.name))
		})
	}
}

// Flag and argument misuse is exit 2 with a sentence naming the flag.
func TestConsoleUsageErrors(t *testing.T) {
	t.Parallel()
	tf := newTestFleet(t, testHost{name: "u1", protocols: "[ipmi]"}, testHost{name: "u2", protocols: "[ipmi]"})
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"interactive with several hosts", []string{"console", "all"}, "an interactive console is for one host"},
		{"several hosts without --out-dir", []string{"console", "all", "--capture", "1s"}, "needs --out-dir"},
		{"--out-dir without --capture", []string{"console", "u1", "--out-dir", "x"}, "--out-dir is for capture mode"},
		{"bad regexp", []string{"console", "u1", "--until", "(login"}, "is not a regular expression"},
		{"escape that is a command", []string{"console", "u1", "-e", "."}, "is itself an escape command"},
		{"escape of two letters", []string{"console", "u1", "-e", "ab"}, "want one character"},
		{"negative capture", []string{"console", "u1", "--capture", "-1s"}, "--capture must be positive"},
		{"--log with several hosts", []string{"console", "all", "--capture", "1s", "--out-dir", "x", "--log", "y"}, "--log is for one host"},
		{"no host", []string{"console"}, "needs a host"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tf.rmm(tt.args...)
			if r.code != ExitUsage || !strings.Contains(r.stderr, tt.want) {
				t.Errorf("exit %d, stderr:\n%s\nwant exit 2 and %q", r.code, r.stderr, tt.want)
			}
		})
	}
	for _, n := range []string{"u1", "u2"} {
		if st := tf.host(n).IPMI.Stats(); st.SessionsOpened != 0 {
			t.Errorf("%s: a usage error opened a session", n)
		}
	}
}

func TestEscapeParser(t *testing.T) {
	type ev struct {
		kind keyKind
		data string
	}
	tests := []struct {
		name  string
		esc   byte
		feeds []string
		want  []ev
	}{
		{"plain keys", '&', []string{"ls -l\r"}, []ev{{keyData, "ls -l\r"}}},
		{"quit at the start", '&', []string{"&."}, []ev{{keyQuit, ""}}},
		{"quit after Enter", '&', []string{"x\r&."}, []ev{{keyData, "x\r"}, {keyQuit, ""}}},
		{"quit after newline", '&', []string{"x\n&."}, []ev{{keyData, "x\n"}, {keyQuit, ""}}},
		{"mid-line is an ordinary key", '&', []string{"a && b &.\r"}, []ev{{keyData, "a && b &.\r"}}},
		{"literal escape", '&', []string{"&&x"}, []ev{{keyData, "&x"}}},
		{"escape then other key", '&', []string{"&x"}, []ev{{keyData, "&x"}}},
		{"break, then more", '&', []string{"&Bh"}, []ev{{keyBreak, ""}, {keyData, "h"}}},
		{"lower-case break", '&', []string{"&b"}, []ev{{keyBreak, ""}}},
		{"help then quit", '&', []string{"&?&."}, []ev{{keyHelp, ""}, {keyQuit, ""}}},
		{"split across reads", '&', []string{"\r&", "."}, []ev{{keyData, "\r"}, {keyQuit, ""}}},
		{"nothing after quit", '&', []string{"&.rm -rf\r"}, []ev{{keyQuit, ""}}},
		{"other escape char", '~', []string{"&.~."}, []ev{{keyData, "&.~."}}},
		{"other escape char after Enter", '~', []string{"&.\r~."}, []ev{{keyData, "&.\r"}, {keyQuit, ""}}},
		{"other escape char at start", '~', []string{"~."}, []ev{{keyQuit, ""}}},
		{"control escape", 0x1d, []string{"\x1d."}, []ev{{keyQuit, ""}}},
		{"ctrl-c is a key", '&', []string{"\x03"}, []ev{{keyData, "\x03"}}},
		{"escape at EOF is sent", '&', []string{"x\r&"}, []ev{{keyData, "x\r"}, {keyData, "&"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newEscapeParser(tt.esc)
			var got []ev
			for _, f := range tt.feeds {
				for _, e := range p.feed([]byte(f)) {
					got = append(got, ev{e.kind, string(e.data)})
				}
			}
			for _, e := range p.end() {
				got = append(got, ev{e.kind, string(e.data)})
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestParseEscape(t *testing.T) {
	tests := []struct {
		in   string
		want byte
		ok   bool
	}{
		{"&", '&', true}, {"~", '~', true}, {"^]", 0x1d, true}, {"^a", 0x01, true},
		{".", 0, false}, {"?", 0, false}, {"B", 0, false}, {"", 0, false}, {"&&", 0, false}, {"é", 0, false},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%q", tt.in), func(t *testing.T) {
			got, err := parseEscape(tt.in)
			if (err == nil) != tt.ok || got != tt.want {
				t.Errorf("parseEscape(%q) = %q, %v", tt.in, got, err)
			}
		})
	}
}

// newShortSessionFleet is newTestFleet whose BMCs drop an idle session
// after d instead of 60 s. A BMC that goes dead mid-session keeps rmm's
// session in its table (the Close Session rmm sends is lost), exactly as
// real ones do, until it times out; tests that kill a BMC need that to
// happen within the fleet's cleanup check. (newTestFleet takes no sim
// options, hence the restart.)
func newShortSessionFleet(t *testing.T, d time.Duration, hosts ...testHost) *testFleet {
	t.Helper()
	tf := newTestFleet(t, hosts...)
	// Replace the fleet newTestFleet started with one on the same
	// addresses and the short timeout. Its cleanup still checks the
	// sessions of the first fleet, which never saw a client.
	loaded, err := loadInventory(&Env{IO: Test(nil, nil, nil), Getenv: tf.getenv}, &globalOptions{inventory: tf.inv})
	if err != nil {
		t.Fatal(err)
	}
	specs, err := simSpecs(context.Background(), loaded, loaded.Hosts, nil)
	if err != nil {
		t.Fatal(err)
	}
	tf.fleet.Close()
	fl, err := sim.Start(context.Background(), specs, sim.WithCycleDelay(100*time.Millisecond), sim.WithSessionTimeout(d))
	if err != nil {
		t.Fatal(err)
	}
	tf.fleet = fl
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second+d)
		defer cancel()
		if err := fl.WaitSessionsClosed(ctx); err != nil {
			t.Errorf("sessions left open on the simulated BMCs: %v", err)
		}
		fl.Close()
	})
	return tf
}

// The BMC goes dead mid-session: rmm says the console was lost and
// reconnects, with a message each time; when the BMC is back it
// reconnects and keys flow again.
func TestConsoleReconnectsAfterTheBMCDrops(t *testing.T) {
	t.Parallel()
	tf := newShortSessionFleet(t, 5*time.Second, testHost{name: "flaky1", protocols: "[ipmi]"})
	h := tf.host("flaky1")
	l := tf.start(context.Background(), "console", "flaky1", "--timeout", "2s", "--reconnect", "5")
	l.waitErr("connected to flaky1", 10*time.Second)
	l.typeKeys("before\r")
	eventually(t, "keys reach the host", 5*time.Second, func() bool { return h.Machine.Console().Typed() == "before\r" })

	h.IPMI.SetDead(true)
	l.typeKeys("lost") // unacknowledged keys are how a dead BMC is noticed at once
	l.waitErr("console to flaky1 lost", 20*time.Second)
	l.waitErr("reconnecting in 1s (attempt 1 of 5)", 5*time.Second)
	l.waitErr("reconnect attempt 1 of 5 failed", 10*time.Second)
	h.IPMI.SetDead(false)
	l.waitErr("reconnected to flaky1", 30*time.Second)
	l.typeKeys("\rafter\r")
	eventually(t, "keys reach the host after reconnecting", 5*time.Second, func() bool {
		return strings.HasSuffix(h.Machine.Console().Typed(), "\rafter\r")
	})
	l.typeKeys("&.")
	if code := l.wait(10 * time.Second); code != 0 {
		t.Fatalf("exit %d\n%s", code, l.stderr.String())
	}
	solIdle(t, h)
}

// The BMC stays dead: after --reconnect attempts rmm exits 1, saying why.
func TestConsoleGivesUpOnADeadBMC(t *testing.T) {
	t.Parallel()
	tf := newShortSessionFleet(t, 5*time.Second, testHost{name: "gone1", protocols: "[ipmi]"})
	h := tf.host("gone1")
	l := tf.start(context.Background(), "console", "gone1", "--timeout", "1s", "--reconnect", "2")
	l.waitErr("connected to gone1", 10*time.Second)
	h.IPMI.SetDead(true)
	l.typeKeys("x")
	code := l.wait(60 * time.Second)
	if code != ExitFailed {
		t.Fatalf("exit %d\n%s", code, l.stderr.String())
	}
	for _, w := range []string{"console to gone1 lost", "attempt 1 of 2", "attempt 2 of 2", "gone1 (bmc " + h.Spec.Addr.String() + "): console lost", "gave up after 2 reconnect attempts", "hint: "} {
		if !strings.Contains(l.stderr.String(), w) {
			t.Errorf("stderr lacks %q:\n%s", w, l.stderr.String())
		}
	}
	h.IPMI.SetDead(false)
}

// Another session takes the console over (rmm console --force
// elsewhere): the first rmm says so and exits, without taking it back.
func TestConsoleTakenOverExits(t *testing.T) {
	t.Parallel()
	tf := newTestFleet(t, testHost{name: "shared1", protocols: "[ipmi]"})
	h := tf.host("shared1")
	first := tf.start(context.Background(), "console", "shared1")
	first.waitErr("connected to shared1", 10*time.Second)
	second := tf.start(context.Background(), "console", "shared1", "--force")
	second.waitErr("connected to shared1", 10*time.Second)
	if code := first.wait(15 * time.Second); code != ExitFailed {
		t.Fatalf("first console: exit %d\n%s", code, first.stderr.String())
	}
	if s := first.stderr.String(); !strings.Contains(s, "deactivated the sol payload") || !strings.Contains(s, "does not take it back") || strings.Contains(s, "reconnecting") {
		t.Errorf("first console's stderr:\n%s", s)
	}
	second.typeKeys("still mine\r&.")
	if code := second.wait(10 * time.Second); code != 0 {
		t.Fatalf("second console: exit %d\n%s", code, second.stderr.String())
	}
	if got := h.Machine.Console().Typed(); got != "still mine\r" {
		t.Errorf("host received %q", got)
	}
	solIdle(t, h)
}

// Ctrl-C (the root context cancelled, as main does on SIGINT, SIGTERM and
// SIGHUP) closes the SOL session and exits 130.
func TestConsoleInterruptClosesSession(t *testing.T) {
	t.Parallel()
	tf := newTestFleet(t, testHost{name: "int1", protocols: "[ipmi]"})
	h := tf.host("int1")
	ctx, cancel := context.WithCancel(context.Background())
	l := tf.start(ctx, "console", "int1")
	l.waitErr("connected to int1", 10*time.Second)
	eventually(t, "sol active", 5*time.Second, solActive(h))
	cancel()
	if code := l.wait(10 * time.Second); code != ExitInterrupted {
		t.Fatalf("exit %d\n%s", code, l.stderr.String())
	}
	if !strings.Contains(l.stderr.String(), "interrupted: console to int1 closed") {
		t.Errorf("stderr:\n%s", l.stderr.String())
	}
	solIdle(t, h)
}
