package ipmi

import (
	"context"
	"fmt"
	"sync"
	"syscall"
	"testing"
	"time"

	goipmi "github.com/bougou/go-ipmi/pkg/client"
	"github.com/bougou/go-ipmi/pkg/types"
	"github.com/rmm-project/rmm/bmc/ipmi/internal/testbmc"
)

// benchAddrs is the benchmarks' share of bmc/ipmi's loopback block.
var benchAddrs = &testbmc.Block{First: 16, Last: 19}

// statusFunc runs one whole session: open, Get Chassis Status, close.
type statusFunc func(ctx context.Context, b *testbmc.BMC, suite int) error

// rmmStatus is rmm's provider: the path `rmm power status` takes.
func rmmStatus(ctx context.Context, b *testbmc.BMC, suite int) error {
	p, err := New(target(b, suite))
	if err != nil {
		return err
	}
	if err := p.Open(ctx); err != nil {
		return err
	}
	st, err := p.PowerStateGet(ctx)
	if cerr := p.Close(ctx); err == nil {
		err = cerr
	}
	if err == nil && st != "on" {
		err = fmt.Errorf("power %q", st)
	}
	return err
}

// goipmiStatus is go-ipmi's own client doing the same: the floor rmm is
// compared against.
func goipmiStatus(ctx context.Context, b *testbmc.BMC, suite int) error {
	c, err := goipmi.NewClient(b.Addr.Addr().String(), int(b.Addr.Port()), testbmc.User, testbmc.Password)
	if err != nil {
		return err
	}
	c.WithCipherSuiteID(types.CipherSuiteID(suite))
	if err := c.Connect(ctx); err != nil {
		return err
	}
	st, err := c.GetChassisStatus(ctx)
	if cerr := c.Close(ctx); err == nil {
		err = cerr
	}
	if err == nil && !st.PowerIsOn {
		err = fmt.Errorf("power off")
	}
	return err
}

var clients = []struct {
	name string
	run  statusFunc
}{
	{"rmm", rmmStatus},
	{"go-ipmi", goipmiStatus},
}

// cpuTime is this process's user+system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkStatus: one session (open, Get Chassis Status, close) against
// one in-process BMC. cpu-ms/op is the whole process's CPU, client and
// BMC together; the BMC's share is the same for both clients.
func BenchmarkStatus(b *testing.B) {
	for _, suite := range []int{3, 17} {
		for _, c := range clients {
			b.Run(fmt.Sprintf("%s/suite%d", c.name, suite), func(b *testing.B) {
				bmc := testbmc.Start(b, testbmc.Options{Addr: benchAddrs.Next()})
				ctx := context.Background()
				b.ReportAllocs()
				cpu0 := cpuTime()
				b.ResetTimer()
				for b.Loop() {
					if err := c.run(ctx, bmc, suite); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(cpuTime()-cpu0)/float64(time.Millisecond)/float64(b.N), "cpu-ms/op")
			})
		}
	}
}

// BenchmarkFleetStatus: power status of 200 BMCs, 64 sessions in flight,
// one op = the whole fleet.
func BenchmarkFleetStatus(b *testing.B) {
	const fleet, inFlight = 200, 64
	bmcs := make([]*testbmc.BMC, fleet)
	for i := range bmcs {
		bmcs[i] = testbmc.Start(b, testbmc.Options{Addr: benchAddrs.Next()})
	}
	for _, c := range clients {
		b.Run(c.name+"/suite17", func(b *testing.B) {
			ctx := context.Background()
			b.ReportAllocs()
			cpu0 := cpuTime()
			b.ResetTimer()
			for b.Loop() {
				sem := make(chan struct{}, inFlight)
				var wg sync.WaitGroup
				errs := make(chan error, fleet)
				for _, m := range bmcs {
					wg.Add(1)
					sem <- struct{}{}
					go func() {
						defer wg.Done()
						defer func() { <-sem }()
						hctx, cancel := context.WithTimeout(ctx, 5*time.Second)
						defer cancel()
						if err := c.run(hctx, m, 17); err != nil {
							errs <- err
						}
					}()
				}
				wg.Wait()
				close(errs)
				for err := range errs {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(cpuTime()-cpu0)/float64(time.Millisecond)/float64(b.N*fleet), "cpu-ms/host")
		})
	}
}
