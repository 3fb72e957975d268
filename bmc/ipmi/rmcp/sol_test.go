package rmcp

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

// TestSOLDroppedSession: when the BMC goes away without deactivating the
// payload, the console notices at its next keepalive and Read fails with a
// typed error instead of hanging.
func TestSOLDroppedSession(t *testing.T) {
	for _, tc := range []struct {
		name  string
		kill  func(*testbmc.BMC)
		want  error
		limit time.Duration
	}{
		{"port closed", (*testbmc.BMC).Vanish, bmc.ErrUnreachable, 5 * time.Second},
		{"link dead", func(b *testbmc.BMC) { b.Blackhole(true) }, bmc.ErrTimeout, 15 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := testbmc.Start(t, testbmc.Options{Addr: addrs.Next(), Console: true})
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			s, err := Open(ctx, config(b, 17))
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close(ctx)
			sol, err := s.OpenSOL(ctx, SOLOptions{KeepAlive: 200 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			defer sol.Close(ctx)
			b.Console.FeedRX([]byte("before"))
			buf := make([]byte, 64)
			if n, err := sol.Read(buf); err != nil || string(buf[:n]) != "before" {
				t.Fatalf("read %q, %v", buf[:n], err)
			}
			tc.kill(b)
			done := make(chan error, 1)
			go func() {
				_, err := io.ReadAll(sol)
				done <- err
			}()
			select {
			case err := <-done:
				if !errors.Is(err, tc.want) {
					t.Fatalf("read after the BMC went away: %v, want %v", err, tc.want)
				}
			case <-time.After(tc.limit):
				t.Fatalf("read still blocked %s after the BMC went away", tc.limit)
			}
			if _, err := sol.Write([]byte("x")); !errors.Is(err, tc.want) {
				t.Errorf("write on a dropped console: %v, want %v", err, tc.want)
			}
		})
	}
}

// TestSOLKeepalive: an idle console sends keepalives and stays usable.
func TestSOLKeepalive(t *testing.T) {
	b := startBMC(t, testbmc.Options{Console: true})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s, err := Open(ctx, config(b, 3))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(ctx)
	sol, err := s.OpenSOL(ctx, SOLOptions{KeepAlive: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer sol.Close(ctx)
	if _, err := s.Raw(ctx, 0x00, 0x01, nil); !errors.Is(err, bmc.ErrBusy) {
		t.Errorf("request on a session serving a console: %v, want ErrBusy", err)
	}
	time.Sleep(450 * time.Millisecond)
	if _, err := sol.Write([]byte("still here\r")); err != nil {
		t.Fatal(err)
	}
	if got := b.Console.TXString(); got != "still here\r" {
		t.Errorf("console got %q", got)
	}
	st := s.Stats()
	if st.Sent < 6 {
		t.Errorf("only %d packets in 450 ms with a 100 ms keepalive", st.Sent)
	}
	if err := sol.Close(ctx); err != nil {
		t.Fatal(err)
	}
	// The session is usable again once the console is closed.
	if _, err := s.Raw(ctx, 0x00, 0x01, nil); err != nil {
		t.Errorf("request after the console closed: %v", err)
	}
}

// TestSOLWriteFlowControl: a console that takes at most 7 bytes per write
// (a full serial buffer) still gets every keystroke, in order.
func TestSOLWriteFlowControl(t *testing.T) {
	b := startBMC(t, testbmc.Options{Console: true})
	b.Console.SetWriteLimit(7)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s, err := Open(ctx, config(b, 17))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(ctx)
	sol, err := s.OpenSOL(ctx, SOLOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer sol.Close(ctx)
	msg := strings.Repeat("abcdefghijklmnopqrstuvwxyz", 10)
	if n, err := sol.Write([]byte(msg)); err != nil || n != len(msg) {
		t.Fatalf("write: %d, %v", n, err)
	}
	if got := b.Console.TXString(); got != msg {
		t.Errorf("console got %q", got)
	}
}
