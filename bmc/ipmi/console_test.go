package ipmi

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/rmm-project/rmm/bmc"
	"github.com/rmm-project/rmm/bmc/ipmi/internal/testbmc"
)

// readUntil reads from c until want has appeared or d passed.
func readUntil(t *testing.T, c io.Reader, want string, d time.Duration) string {
	t.Helper()
	got := make(chan string, 1)
	go func() {
		var sb strings.Builder
		buf := make([]byte, 256)
		for !strings.Contains(sb.String(), want) {
			n, err := c.Read(buf)
			sb.Write(buf[:n])
			if err != nil {
				break
			}
		}
		got <- sb.String()
	}()
	select {
	case s := <-got:
		if !strings.Contains(s, want) {
			t.Fatalf("read %q, want %q", s, want)
		}
		return s
	case <-time.After(d):
		t.Fatalf("no %q within %s", want, d)
	}
	return ""
}

func TestConsole(t *testing.T) {
	for _, suite := range []int{3, 17} {
		t.Run(map[int]string{3: "suite 3", 17: "suite 17"}[suite], func(t *testing.T) {
			noLeak(t)
			b := startBMC(t, testbmc.Options{Console: true})
			p := open(t, b, suite)
			c, err := p.Console(ctx(t), bmc.ConsoleOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close(context.Background())

			// Host output reaches Read.
			b.Console.FeedRX([]byte("Debian GNU/Linux 12 db1 ttyS0\r\n\r\ndb1 login: "))
			readUntil(t, c, "db1 login: ", 5*time.Second)

			// Keystrokes reach the host, in order, in several packets.
			keys := "root\r" + strings.Repeat("0123456789", 60) + "\r"
			if n, err := c.Write([]byte(keys)); err != nil || n != len(keys) {
				t.Fatalf("write: %d, %v", n, err)
			}
			if got := b.Console.TXString(); got != keys {
				t.Errorf("host received %q, want %q", got, keys)
			}

			// Output after input still flows.
			b.Console.FeedRX([]byte("Password: "))
			readUntil(t, c, "Password: ", 5*time.Second)

			if err := c.SendBreak(ctx(t)); err != nil {
				t.Fatalf("break: %v", err)
			}
			if err := c.Close(ctx(t)); err != nil {
				t.Fatalf("close: %v", err)
			}
			if err := c.Close(ctx(t)); err != nil {
				t.Fatalf("second close: %v", err)
			}
			if n, err := c.Read(make([]byte, 8)); n != 0 || err != io.EOF {
				t.Errorf("read after close: %d, %v; want EOF", n, err)
			}
			if _, err := c.Write([]byte("x")); err == nil {
				t.Error("write after close succeeded")
			}
			st := p.Stats()
			if st.DroppedIntegrity+st.DroppedMalformed+st.DroppedWindow != 0 {
				t.Errorf("dropped packets on a clean link: %+v", st)
			}
		})
	}
}

func TestConsoleBreak(t *testing.T) {
	b := startBMC(t, testbmc.Options{Console: true})
	p := open(t, b, 17)
	c, err := p.Console(ctx(t), bmc.ConsoleOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	if err := c.SendBreak(ctx(t)); err != nil {
		t.Fatal(err)
	}
	// The break goes in its own packet; a keystroke after it confirms the
	// BMC processed the packet before.
	if _, err := c.Write([]byte("s")); err != nil {
		t.Fatal(err)
	}
	if got := b.Console.Breaks(); got != 1 {
		t.Errorf("%d breaks reached the console, want 1", got)
	}
}

// TestConsoleBusy: a second console is refused with ErrBusy and a hint to
// use --force; with Force it takes the payload over, and the first console
// learns it lost the payload.
func TestConsoleBusy(t *testing.T) {
	noLeak(t)
	b := startBMC(t, testbmc.Options{Console: true})
	first := open(t, b, 17)
	c1, err := first.Console(ctx(t), bmc.ConsoleOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer c1.Close(context.Background())

	second := open(t, b, 17)
	_, err = second.Console(ctx(t), bmc.ConsoleOptions{})
	if !errors.Is(err, bmc.ErrBusy) {
		t.Fatalf("second console: %v, want ErrBusy", err)
	}
	if h := bmc.Hint(bmc.Target{Name: "db1"}.Wrap("console", err)); !strings.Contains(h, "--force") {
		t.Errorf("hint %q does not mention --force", h)
	}
	if !strings.Contains(err.Error(), "session 0x") {
		t.Errorf("error does not say who holds the console: %v", err)
	}

	c2, err := second.Console(ctx(t), bmc.ConsoleOptions{Force: true})
	if err != nil {
		t.Fatalf("forced console: %v", err)
	}
	defer c2.Close(context.Background())
	if _, err := io.ReadAll(c1); !errors.Is(err, bmc.ErrBusy) {
		t.Errorf("first console read: %v, want ErrBusy after the takeover", err)
	}
	if _, err := c2.Write([]byte("mine\r")); err != nil {
		t.Fatalf("write on forced console: %v", err)
	}
	if got := b.Console.TXString(); got != "mine\r" {
		t.Errorf("host received %q", got)
	}
}
