package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"
)

// buildRMM builds the real rmm binary (cmd/rmm: its signal handling is
// part of what is tested) into dir.
func buildRMM(t *testing.T, dir string) string {
	t.Helper()
	gobin, err := exec.LookPath("go")
	if err != nil {
		gobin = "/usr/local/go/bin/go"
	}
	bin := filepath.Join(dir, "rmm")
	cmd := exec.Command(gobin, "build", "-o", bin, "github.com/rmm-project/rmm/cmd/rmm")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build cmd/rmm: %v\n%s", err, out)
	}
	return bin
}

// ptyRun is the rmm binary running on a pseudo-terminal: stdin, stdout and
// stderr are the terminal, which is its controlling terminal, as in an ssh
// session.
type ptyRun struct {
	t       *testing.T
	cmd     *exec.Cmd
	ptmx    *os.File // the terminal emulator's side
	tty     *os.File // the process's side, kept open here to read its modes
	out     *syncBuffer
	copied  chan struct{}
	exited  chan struct{} // closed when rmm has exited; then waitErr is set
	waitErr error
}

func startPTY(t *testing.T, bin string, tf *testFleet, args ...string) *ptyRun {
	t.Helper()
	ptmx, tty, err := pty.Open()
	if err != nil {
		t.Fatalf("pty: %v", err)
	}
	if err := pty.Setsize(ptmx, &pty.Winsize{Rows: 24, Cols: 132}); err != nil {
		t.Fatal(err)
	}
	// pty's ioctls leave ptmx in blocking mode (os.File.Fd does that), and
	// closing a blocking file waits for the read in progress: the
	// terminal would never hang up. A non-blocking duplicate goes through
	// the runtime poller, whose Close ends the read at once.
	fd, err := unix.FcntlInt(ptmx.Fd(), unix.F_DUPFD_CLOEXEC, 0) // no child may inherit it
	if err != nil {
		t.Fatal(err)
	}
	_ = ptmx.Close()
	if err := unix.SetNonblock(fd, true); err != nil {
		t.Fatal(err)
	}
	ptmx = os.NewFile(uintptr(fd), "/dev/ptmx")
	cmd := exec.Command(bin, append([]string{"-i", tf.inv}, args...)...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "TERM=xterm"}
	for k, v := range tf.vars {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = tty, tty, tty
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	p := &ptyRun{t: t, cmd: cmd, ptmx: ptmx, tty: tty, out: &syncBuffer{}, copied: make(chan struct{}), exited: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start rmm: %v", err)
	}
	go func() {
		defer close(p.copied)
		_, _ = io.Copy(p.out, ptmx) // ends when the test closes ptmx
	}()
	go func() {
		p.waitErr = cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		if p.running() {
			_ = cmd.Process.Kill()
			<-p.exited
		}
		_ = ptmx.Close()
		_ = tty.Close()
		<-p.copied
	})
	return p
}

func (p *ptyRun) running() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

func (p *ptyRun) modes() unix.Termios {
	p.t.Helper()
	tio, err := unix.IoctlGetTermios(int(p.tty.Fd()), unix.TCGETS)
	if err != nil {
		p.t.Fatalf("tcgetattr: %v", err)
	}
	return *tio
}

func (p *ptyRun) waitOutput(want string, d time.Duration) {
	p.t.Helper()
	eventually(p.t, fmt.Sprintf("%q on the terminal; it shows:\n%s", want, p.out.String()), d, func() bool {
		return strings.Contains(p.out.String(), want)
	})
}

func (p *ptyRun) typeKeys(s string) {
	p.t.Helper()
	if _, err := p.ptmx.Write([]byte(s)); err != nil {
		p.t.Fatalf("typing: %v", err)
	}
}

// exitCode waits for rmm to exit, at most d.
func (p *ptyRun) exitCode(d time.Duration) int {
	p.t.Helper()
	select {
	case <-p.exited:
		var ee *exec.ExitError
		switch {
		case p.waitErr == nil:
			return 0
		case errors.As(p.waitErr, &ee):
			return ee.ExitCode()
		}
		p.t.Fatalf("wait: %v", p.waitErr)
	case <-time.After(d):
		p.t.Fatalf("rmm still running after %s; the terminal shows:\n%s", d, p.out.String())
	}
	return -1
}

// The terminal is raw while the console runs and exactly as before after
// it ends, however it ends: &., the BMC dying mid-session, SIGINT,
// SIGTERM, SIGHUP. Ctrl-C typed on the raw terminal is a key for the host,
// not a signal. Every ending closes the SOL session (the fleet's cleanup
// checks the BMC sessions; solIdle the SOL payload).
func TestConsoleTerminalRestored(t *testing.T) {
	t.Parallel()
	bin := buildRMM(t, t.TempDir())
	cases := []struct {
		name     string
		args     []string
		end      func(t *testing.T, p *ptyRun, tf *testFleet, host string)
		wantCode int
		wantOut  []string
	}{
		{"quit with &.", nil, func(t *testing.T, p *ptyRun, tf *testFleet, host string) {
			p.typeKeys("&.")
		}, 0, []string{"console to pty-quit closed"}},
		{"ctrl-c is a key, then &.", nil, func(t *testing.T, p *ptyRun, tf *testFleet, host string) {
			m := tf.host(host).Machine
			p.typeKeys("sleep 100\r\x03")
			eventually(t, "ctrl-c reaches the host", 5*time.Second, func() bool { return m.Console().Typed() == "sleep 100\r\x03" })
			time.Sleep(100 * time.Millisecond)
			if !p.running() {
				t.Fatalf("rmm exited on a typed Ctrl-C")
			}
			p.typeKeys("\r&.")
		}, 0, []string{"console to pty-ctrlc closed"}},
		{"SIGINT", nil, func(t *testing.T, p *ptyRun, tf *testFleet, host string) {
			_ = p.cmd.Process.Signal(os.Interrupt)
		}, ExitInterrupted, []string{"interrupted: console to pty-int closed"}},
		{"SIGTERM", nil, func(t *testing.T, p *ptyRun, tf *testFleet, host string) {
			_ = p.cmd.Process.Signal(syscall.SIGTERM)
		}, ExitInterrupted, []string{"interrupted: console to pty-term closed"}},
		{"SIGHUP", nil, func(t *testing.T, p *ptyRun, tf *testFleet, host string) {
			_ = p.cmd.Process.Signal(syscall.SIGHUP)
		}, ExitInterrupted, []string{"interrupted: console to pty-hup closed"}},
		{"the BMC dies mid-session", []string{"--timeout", "1s", "--reconnect", "1"}, func(t *testing.T, p *ptyRun, tf *testFleet, host string) {
			tf.host(host).IPMI.SetDead(true)
			t.Cleanup(func() { tf.host(host).IPMI.SetDead(false) })
			p.typeKeys("x")
		}, ExitFailed, []string{"console to pty-dead lost", "reconnecting in 1s (attempt 1 of 1)", "reconnect attempt 1 of 1 failed", "gave up after 1 reconnect attempts"}},
	}
	names := map[string]string{"quit with &.": "pty-quit", "ctrl-c is a key, then &.": "pty-ctrlc", "SIGINT": "pty-int",
		"SIGTERM": "pty-term", "SIGHUP": "pty-hup", "the BMC dies mid-session": "pty-dead"}
	var hosts []testHost
	for _, c := range cases {
		hosts = append(hosts, testHost{name: names[c.name], protocols: "[ipmi]", scenarios: "[panicked]"})
	}
	tf := newShortSessionFleet(t, 6*time.Second, hosts...)
	for _, c := range cases {
		host := names[c.name]
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			p := startPTY(t, bin, tf, append([]string{"console", host}, c.args...)...)
			before := p.modes()
			if before.Lflag&unix.ICANON == 0 || before.Lflag&unix.ECHO == 0 {
				t.Fatalf("the test terminal does not start in cooked mode: lflag %#x", before.Lflag)
			}
			p.waitOutput("connected to "+host, 15*time.Second)
			p.waitOutput("end Kernel panic", 5*time.Second) // the host's output
			eventually(t, "raw mode", 5*time.Second, func() bool {
				m := p.modes()
				return m.Lflag&(unix.ICANON|unix.ECHO|unix.ISIG) == 0
			})
			c.end(t, p, tf, host)
			if code := p.exitCode(60 * time.Second); code != c.wantCode {
				t.Fatalf("exit %d, want %d; the terminal shows:\n%s", code, c.wantCode, p.out.String())
			}
			if after := p.modes(); after != before {
				t.Errorf("terminal modes not restored:\nbefore %+v\nafter  %+v", before, after)
			}
			for _, w := range c.wantOut {
				p.waitOutput(w, 5*time.Second)
			}
			solIdle(t, tf.host(host))
		})
	}
}

// The terminal hangs up (the ssh connection dropped: the kernel sends
// SIGHUP and the terminal is gone): rmm still closes the SOL session and
// its IPMI session.
func TestConsoleHangupClosesSession(t *testing.T) {
	t.Parallel()
	bin := buildRMM(t, t.TempDir())
	tf := newTestFleet(t, testHost{name: "pty-hangup", protocols: "[ipmi]"})
	h := tf.host("pty-hangup")
	p := startPTY(t, bin, tf, "console", "pty-hangup")
	p.waitOutput("connected to pty-hangup", 15*time.Second)
	eventually(t, "sol active", 5*time.Second, solActive(h))
	_ = p.ptmx.Close() // the terminal emulator goes away
	if code := p.exitCode(20 * time.Second); code != ExitInterrupted {
		t.Fatalf("exit %d after hangup, want %d", code, ExitInterrupted)
	}
	solIdle(t, h)
	eventually(t, "ipmi session closed", 5*time.Second, func() bool { return h.IPMI.OpenSessions() == 0 })
}

// The terminal guard restores raw mode on a panic: in the goroutine that
// entered raw mode (deferred restore) and in any console goroutine
// (deferred onPanic, which restores and panics on).
func TestTermGuardRestoresOnPanic(t *testing.T) {
	ptmx, tty, err := pty.Open()
	if err != nil {
		t.Fatalf("pty: %v", err)
	}
	defer ptmx.Close()
	defer tty.Close()
	fd := int(tty.Fd())
	get := func() unix.Termios {
		tio, err := unix.IoctlGetTermios(fd, unix.TCGETS)
		if err != nil {
			t.Fatal(err)
		}
		return *tio
	}
	before := get()
	s := Test(nil, nil, nil)
	s.InTTY, s.InFd = true, fd
	for _, how := range []string{"restore", "onPanic"} {
		t.Run(how, func(t *testing.T) {
			g := newTermGuard(s)
			var recovered any
			func() {
				defer func() { recovered = recover() }()
				if how == "restore" {
					defer g.restore()
				} else {
					defer g.onPanic()
				}
				if err := g.makeRaw(); err != nil {
					t.Fatal(err)
				}
				if get() == before {
					t.Fatal("makeRaw changed nothing")
				}
				panic("boom")
			}()
			if recovered != "boom" {
				t.Errorf("the panic was swallowed or changed: %v", recovered)
			}
			if after := get(); after != before {
				t.Errorf("terminal left changed after a panic:\nbefore %+v\nafter  %+v", before, after)
			}
		})
	}
}
