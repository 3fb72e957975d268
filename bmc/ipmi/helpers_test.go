package ipmi

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/rmm-project/rmm/bmc"
	"github.com/rmm-project/rmm/bmc/ipmi/internal/testbmc"
	"github.com/rmm-project/rmm/secret"
)

// addrs is the provider tests' share of bmc/ipmi's loopback block: rmcp's
// tests use 127.0.10-11.x, benchmarks 127.0.16-19.x.
var addrs = &testbmc.Block{First: 12, Last: 15}

// startBMC runs a test BMC on a fresh address and checks, when the test
// ends, that no session was left in its table.
func startBMC(t *testing.T, o testbmc.Options) *testbmc.BMC {
	t.Helper()
	o.Addr = addrs.Next()
	b := testbmc.Start(t, o)
	t.Cleanup(func() {
		if t.Failed() {
			return
		}
		if n := b.WaitSessions(0, 2*time.Second); n != 0 {
			t.Errorf("the BMC still holds %d session(s) after the test", n)
		}
	})
	return b
}

func target(b *testbmc.BMC, suite int) bmc.Target {
	return bmc.Target{
		Name: "db1", Addr: b.Addr.Addr(), IPMIPort: b.Addr.Port(),
		Username: testbmc.User, Password: secret.New(testbmc.Password), CipherSuite: suite,
	}
}

// open returns an open provider for b, closed when the test ends.
func open(t *testing.T, b *testbmc.BMC, suite int) *Provider {
	t.Helper()
	pv, err := New(target(b, suite))
	if err != nil {
		t.Fatal(err)
	}
	p := pv.(*Provider)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := p.Open(ctx); err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { _ = p.Close(context.Background()) })
	return p
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}

// noLeak fails the test if, once it ended, more goroutines run than when
// it started (allowing the runtime and the test BMC some slack and time to
// wind down).
func noLeak(t *testing.T) {
	t.Helper()
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(3 * time.Second)
		for {
			n := runtime.NumGoroutine()
			if n <= before+2 {
				return
			}
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<16)
				t.Errorf("goroutines: %d before, %d after\n%s", before, n, buf[:runtime.Stack(buf, true)])
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
}
