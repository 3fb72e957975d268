package rmcp

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/rmm-project/rmm/bmc"
	"github.com/rmm-project/rmm/bmc/ipmi/internal/testbmc"
	"github.com/rmm-project/rmm/secret"
)

// addrs is this package's share of bmc/ipmi's loopback block
// (127.0.10.x-127.0.11.x); the provider's tests use 127.0.12-15.x.
var addrs = &testbmc.Block{First: 10, Last: 11}

func startBMC(t *testing.T, o testbmc.Options) *testbmc.BMC {
	t.Helper()
	o.Addr = addrs.Next()
	return testbmc.Start(t, o)
}

func config(b *testbmc.BMC, suite int) Config {
	return Config{Addr: b.Addr, Username: testbmc.User, Password: secret.New(testbmc.Password), CipherSuite: suite}
}

func TestOpenClose(t *testing.T) {
	for _, suite := range []int{0, 3, 17} {
		t.Run(map[int]string{0: "auto", 3: "suite3", 17: "suite17"}[suite], func(t *testing.T) {
			b := startBMC(t, testbmc.Options{})
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			s, err := Open(ctx, config(b, suite))
			if err != nil {
				t.Fatalf("open: %v", err)
			}
			want := suite
			if want == 0 {
				want = 17
			}
			if s.Suite().ID != want {
				t.Errorf("suite %d, want %d", s.Suite().ID, want)
			}
			if n := b.Sessions(); n != 1 {
				t.Errorf("bmc has %d sessions while open, want 1", n)
			}
			data, err := s.Raw(ctx, 0x00, 0x01, nil) // Get Chassis Status
			if err != nil {
				t.Fatalf("get chassis status: %v", err)
			}
			if len(data) < 3 || data[0]&1 != 1 {
				t.Errorf("chassis status %x: want power on", data)
			}
			if err := s.Close(ctx); err != nil {
				t.Errorf("close: %v", err)
			}
			if err := s.Close(ctx); err != nil {
				t.Errorf("second close: %v", err)
			}
			if n := b.WaitSessions(0, time.Second); n != 0 {
				t.Errorf("bmc has %d sessions after close, want 0", n)
			}
			if _, err := s.Raw(ctx, 0x00, 0x01, nil); !errors.Is(err, bmc.ErrProtocol) {
				t.Errorf("call after close: %v, want ErrProtocol", err)
			}
			t.Logf("stats: %+v", s.Stats())
		})
	}
}

func TestOpenOtherSuites(t *testing.T) {
	for _, suite := range []int{1, 2, 15, 16} {
		t.Run(fmt.Sprintf("suite %d", suite), func(t *testing.T) {
			b := startBMC(t, testbmc.Options{Suites: []int{suite}})
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			s, err := Open(ctx, config(b, suite))
			if err != nil {
				t.Fatalf("open: %v", err)
			}
			if _, err := s.Raw(ctx, 0x00, 0x01, nil); err != nil {
				t.Fatalf("get chassis status: %v", err)
			}
			if err := s.Close(ctx); err != nil {
				t.Fatal(err)
			}
			if n := b.WaitSessions(0, time.Second); n != 0 {
				t.Errorf("%d sessions left", n)
			}
		})
	}
}

// TestPrivilegeFallback: a user the BMC allows only OPERATOR still gets a
// session (RAKP refuses ADMINISTRATOR, the next try asks for OPERATOR).
func TestPrivilegeFallback(t *testing.T) {
	b := startBMC(t, testbmc.Options{UserPrivilege: 3})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := Open(ctx, config(b, 17))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(ctx)
	if s.Privilege() != 3 {
		t.Errorf("session privilege %d, want OPERATOR (3)", s.Privilege())
	}
	if err := s.EnsurePrivilege(ctx, 4); err != nil {
		t.Errorf("raising to the session's maximum: %v", err)
	}
	if _, err := s.Raw(ctx, 0x00, 0x02, []byte{0x01}); err != nil { // power on
		t.Errorf("chassis control as operator: %v", err)
	}
}

// TestCloseAfterCancel: Close still ends the session on the BMC when the
// caller's context is already cancelled (Ctrl-C).
func TestCloseAfterCancel(t *testing.T) {
	b := startBMC(t, testbmc.Options{})
	ctx, cancel := context.WithCancel(context.Background())
	s, err := Open(ctx, config(b, 17))
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if n := b.WaitSessions(0, time.Second); n != 0 {
		t.Errorf("%d sessions left after Close with a cancelled context", n)
	}
}

// TestCancelInterruptsWait: cancelling the context ends a wait for an
// answer at once, not at the next retransmission.
func TestCancelInterruptsWait(t *testing.T) {
	b := startBMC(t, testbmc.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := Open(ctx, config(b, 17))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())
	b.Blackhole(true)
	defer b.Blackhole(false)
	cctx, ccancel := context.WithCancel(ctx)
	time.AfterFunc(100*time.Millisecond, ccancel)
	start := time.Now()
	_, err = s.Raw(cctx, 0x00, 0x01, nil)
	if !errors.Is(err, context.Canceled) || errors.Is(err, bmc.ErrTimeout) {
		t.Fatalf("cancelled request: %v, want context.Canceled", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("cancellation took %s", d)
	}
}

// TestConcurrentCallers: goroutines sharing one session are serialised,
// not interleaved (go-ipmi's client mixes their sequence numbers up).
func TestConcurrentCallers(t *testing.T) {
	b := startBMC(t, testbmc.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s, err := Open(ctx, config(b, 3))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(ctx)
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 100; i++ {
				// Alternate commands so a mixed-up answer would be caught.
				if g%2 == 0 {
					if d, err := s.Raw(ctx, 0x00, 0x01, nil); err != nil || len(d) < 3 {
						errs <- fmt.Errorf("chassis status: %x %v", d, err)
						return
					}
				} else if d, err := s.Raw(ctx, 0x06, 0x01, nil); err != nil || len(d) < 11 {
					errs <- fmt.Errorf("device id: %x %v", d, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if st := s.Stats(); st.Stale != 0 || st.Retransmits != 0 {
		t.Errorf("stale answers or retransmissions on a clean link: %+v", st)
	}
}
