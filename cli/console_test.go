package cli

import (
	"bytes"
	"context"
	"fmt"
	"io"
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
