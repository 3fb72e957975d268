package ipmisim

import (
	"context"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/bougou/go-ipmi/pkg/types"
)

// tryConnect connects with short timeouts and reports the error; the
// client is always closed (a failed go-ipmi Connect keeps its socket).
func tryConnect(t *testing.T, b *BMC, timeout time.Duration, retries int) error {
	t.Helper()
	c := newClient(t, b, testPass, types.CipherSuiteID3).WithTimeout(timeout).WithRetry(retries)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err := c.Connect(ctx)
	if err == nil {
		_, err = c.GetChassisStatus(ctx)
		closeClient(t, c)
		return err
	}
	done, cancelDone := context.WithCancel(context.Background())
	cancelDone()
	_ = c.Close(done)
	return err
}

func TestFaults(t *testing.T) {
	tests := []struct {
		name     string
		faults   Faults
		timeout  time.Duration
		retries  int
		wantOK   bool
		check    func(t *testing.T, b *BMC, elapsed time.Duration)
		pingSeen bool // an RMCP presence ping gets a (possibly mangled) answer
		mayLeak  bool // the fault itself can strand a session on the BMC
	}{
		{name: "healthy", timeout: 3 * time.Second, wantOK: true, pingSeen: true},
		{name: "dead", faults: Faults{Dead: true}, timeout: 200 * time.Millisecond, retries: 1,
			check: func(t *testing.T, b *BMC, _ time.Duration) {
				if st := b.Stats(); st.PacketsDropped == 0 || st.PacketsDropped != st.PacketsReceived || len(st.Commands) != 0 {
					t.Errorf("a dead BMC saw something: %+v", st)
				}
			}},
		{name: "slow", faults: Faults{Delay: 150 * time.Millisecond}, timeout: 2 * time.Second, wantOK: true, pingSeen: true,
			check: func(t *testing.T, b *BMC, elapsed time.Duration) {
				// Channel auth, open session, RAKP 1 and 3, privilege,
				// chassis status: every answer waited.
				if elapsed < 5*150*time.Millisecond {
					t.Errorf("a session and a command took %v, want every packet delayed", elapsed)
				}
			}},
		{name: "drop every 3rd", faults: Faults{DropEvery: 3}, timeout: 700 * time.Millisecond, retries: 4, wantOK: true,
			check: func(t *testing.T, b *BMC, _ time.Duration) {
				if b.Stats().PacketsDropped == 0 {
					t.Error("nothing dropped")
				}
			}},
		{name: "truncate", faults: Faults{TruncateEvery: 1}, timeout: 200 * time.Millisecond, retries: 1, pingSeen: true},
		// A corrupted RAKP 4 fails the client's check after the BMC has
		// established the session: it stays open on the BMC (until the
		// inactivity timeout), as with a real lossy link.
		{name: "corrupt", faults: Faults{CorruptEvery: 1}, timeout: 200 * time.Millisecond, retries: 1, pingSeen: true, mayLeak: true},
		{name: "garbage", faults: Faults{GarbageEvery: 1}, timeout: 200 * time.Millisecond, retries: 1, pingSeen: true},
		{name: "session table full", faults: Faults{SessionTableFull: true}, timeout: 500 * time.Millisecond, retries: 1, pingSeen: true,
			check: func(t *testing.T, b *BMC, _ time.Duration) {
				if st := b.Stats(); st.SessionsRefused == 0 || st.SessionsHalfOpen != 0 {
					t.Errorf("table full: %+v", st)
				}
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := startBMC(t, func(c *Config) { c.Faults = tc.faults })
			start := time.Now()
			err := tryConnect(t, b, tc.timeout, tc.retries)
			elapsed := time.Since(start)
			if (err == nil) != tc.wantOK {
				t.Fatalf("connect: %v, want success %v", err, tc.wantOK)
			}
			if tc.check != nil {
				tc.check(t, b, elapsed)
			}
			wait := 300 * time.Millisecond // for an answer that must not come
			if tc.pingSeen {
				wait = 5*time.Second + tc.faults.Delay // returns as soon as it comes
			}
			pong := rawExchange(t, b.Addr(), presencePing, wait)
			if got := pong != nil; got != tc.pingSeen && tc.faults.DropEvery == 0 {
				t.Errorf("presence ping answered %v, want %v", got, tc.pingSeen)
			}
			if st := b.Stats(); st.SessionsOpen != 0 && !tc.mayLeak {
				t.Errorf("sessions left open: %+v", st)
			}
		})
	}
}

func TestSessionTableFullForReal(t *testing.T) {
	b := startBMC(t, func(c *Config) { c.MaxSessions = 1 })
	c1 := dial(t, b, types.CipherSuiteID3)
	if err := tryConnect(t, b, 300*time.Millisecond, 1); err == nil {
		t.Fatal("second session opened in a one-slot table")
	}
	if st := b.Stats(); st.SessionsRefused == 0 || st.SessionsOpen != 1 {
		t.Fatalf("full table: %+v", st)
	}
	resp := rawExchange(t, b.Addr(), openSessionRequest(0xabad1dea), time.Second)
	if len(resp) < 18 || resp[17] != 0x01 {
		t.Fatalf("open session on a full table: %x, want status 0x01", resp)
	}
	closeClient(t, c1)
	if err := tryConnect(t, b, time.Second, 1); err != nil {
		t.Fatalf("after the slot freed: %v", err)
	}
}

func TestFaultsAtRunTime(t *testing.T) {
	b := startBMC(t, nil)
	c := dial(t, b, types.CipherSuiteID17)
	defer closeClient(t, c)
	status := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		_, err := c.GetChassisStatus(ctx)
		return err
	}
	if err := status(); err != nil {
		t.Fatal(err)
	}
	c.WithTimeout(200 * time.Millisecond) // waiting for a dead BMC
	b.SetDead(true)
	if !b.Faults().Dead {
		t.Fatal("Faults does not report Dead")
	}
	if err := status(); err == nil {
		t.Fatal("a dead BMC answered")
	}
	b.SetDead(false)
	c.WithTimeout(3 * time.Second)
	if err := status(); err != nil {
		t.Fatalf("the BMC came back, the session did not: %v", err)
	}
	b.SetFaults(Faults{Delay: 100 * time.Millisecond})
	start := time.Now()
	if err := status(); err != nil || time.Since(start) < 100*time.Millisecond {
		t.Fatalf("slowed down: %v after %v", err, time.Since(start))
	}
	b.SetFaults(Faults{})
}

// simGoroutines counts goroutines running BMC code: go-ipmi's server,
// session and SOL machinery, and this package.
func simGoroutines() int {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	n := 0
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "go-ipmi/pkg/server.") || strings.Contains(g, "go-ipmi/pkg/bmc.") ||
			strings.Contains(g, "rmm/sim/ipmisim.") && !strings.Contains(g, "ipmisim.TestCloseStopsEverything") {
			n++
		}
	}
	return n
}

// Close must stop every goroutine the BMC started and be idempotent. (Not
// parallel: it counts goroutines of the whole process.)
func TestCloseStopsEverything(t *testing.T) {
	eventually(t, "earlier tests' BMCs gone", 5*time.Second, func() bool { return simGoroutines() == 0 })
	var bmcs []*BMC
	for i := range 5 {
		bmcs = append(bmcs, startBMC(t, func(c *Config) {
			c.SOLBusy = i == 0
			if i == 1 {
				c.Faults.Delay = time.Hour
			}
		}))
	}
	// A delayed response pending, and a live SOL session with its pump.
	_ = rawExchange(t, bmcs[1].Addr(), presencePing, 10*time.Millisecond)
	c := dial(t, bmcs[2], types.CipherSuiteID3)
	if err := activateSOL(ctxT(t, 20*time.Second), c); err != nil {
		t.Fatal(err)
	}
	if n := simGoroutines(); n < 2*len(bmcs)+1 {
		t.Fatalf("only %d BMC goroutines running", n)
	}
	for _, b := range bmcs {
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
		if err := b.Close(); err != nil {
			t.Fatalf("second close: %v", err)
		}
		if got := rawExchange(t, b.Addr(), presencePing, 50*time.Millisecond); got != nil {
			t.Fatal("a closed BMC answered")
		}
	}
	eventually(t, "every BMC goroutine stops", 5*time.Second, func() bool { return simGoroutines() == 0 })
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_ = c.Close(ctx)
}
