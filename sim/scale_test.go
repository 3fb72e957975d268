package sim

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// rssBytes is this process's resident set size (Linux), 0 if unknown.
func rssBytes() uint64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// fleetCost is what starting a fleet took.
type fleetCost struct {
	start, close       time.Duration
	rss, heap          uint64 // growth while running
	goroutines         int    // growth while running
	perBMCRSS, perHeap uint64
}

func (c fleetCost) String() string {
	return fmt.Sprintf("start %v, close %v, RSS +%.1f MiB (%.1f KiB/host), heap +%.1f MiB (%.1f KiB/host), goroutines +%d",
		c.start.Round(time.Millisecond), c.close.Round(time.Millisecond),
		float64(c.rss)/(1<<20), float64(c.perBMCRSS)/(1<<10), float64(c.heap)/(1<<20), float64(c.perHeap)/(1<<10), c.goroutines)
}

func heapInUse() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

// measure starts specs, runs check against the running fleet, closes it
// and reports the cost.
func measure(tb testing.TB, specs []HostSpec, check func(*Fleet)) fleetCost {
	tb.Helper()
	g0, rss0, heap0 := runtime.NumGoroutine(), rssBytes(), heapInUse()
	t0 := time.Now()
	f, err := Start(context.Background(), specs)
	if err != nil {
		tb.Fatal(err)
	}
	c := fleetCost{start: time.Since(t0)}
	c.goroutines = runtime.NumGoroutine() - g0
	heap1, rss1 := heapInUse(), rssBytes()
	c.heap = heap1 - min(heap0, heap1)
	c.rss = rss1 - min(rss0, rss1)
	c.perBMCRSS, c.perHeap = c.rss/uint64(len(specs)), c.heap/uint64(len(specs))
	if check != nil {
		check(f)
	}
	t1 := time.Now()
	if err := f.Close(); err != nil {
		tb.Fatal(err)
	}
	c.close = time.Since(t1)
	return c
}

// powerStatusAll opens a session to every host's IPMI BMC (64 at a time, a
// client each), reads chassis status and closes, and returns how many were
// on.
func powerStatusAll(tb testing.TB, f *Fleet) int {
	tb.Helper()
	var on atomic.Int64
	var wg sync.WaitGroup
	sem := make(chan struct{}, 64)
	for _, h := range f.Hosts() {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			c, err := ipmiClient(tb, h, h.BMCPassword())
			if err != nil {
				tb.Errorf("%s: %v", h, err)
				return
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if st, err := c.GetChassisStatus(ctx); err != nil {
				tb.Errorf("%s: %v", h, err)
			} else if st.PowerIsOn {
				on.Add(1)
			}
			closeIPMI(tb, c)
		}()
	}
	wg.Wait()
	return int(on.Load())
}

// TestThousandBMCs starts 1,000 simulated IPMI BMCs in this process, talks
// to every one, and reports what that costs (the numbers in the README).
// The only timing check is a generous bound that proves "bounded".
func TestThousandBMCs(t *testing.T) {
	if testing.Short() {
		t.Skip("starts 1,000 BMCs")
	}
	const n = 1000
	tm := tmpl
	tm.Redfish = false
	specs := Generate(block(t, n), n, tm)
	var queried time.Duration
	cost := measure(t, specs, func(f *Fleet) {
		t0 := time.Now()
		if on := powerStatusAll(t, f); on != n {
			t.Errorf("%d of %d hosts on", on, n)
		}
		queried = time.Since(t0)
		if err := f.WaitSessionsClosed(context.Background()); err != nil {
			t.Error(err)
		}
	})
	t.Logf("%d IPMI BMCs: %s; power status of all over go-ipmi (64 in flight): %v", n, cost, queried.Round(time.Millisecond))
	if cost.start > 30*time.Second {
		t.Errorf("starting %d BMCs took %v", n, cost.start)
	}
}

// BenchmarkStartFleet reports the cost of starting (and closing) a fleet:
// ns/op is start plus close; the metrics split it and add memory.
//
//	go test -run '^$' -bench StartFleet -benchtime 3x ./sim/
func BenchmarkStartFleet(b *testing.B) {
	for _, bc := range []struct {
		name          string
		n             int
		ipmi, redfish bool
	}{
		{"ipmi-1000", 1000, true, false},
		{"ipmi+redfish-1000", 1000, true, true},
	} {
		b.Run(bc.name, func(b *testing.B) {
			tm := tmpl
			tm.IPMI, tm.Redfish = bc.ipmi, bc.redfish
			// Fixed addresses in this package's block: benchmarks do not
			// run alongside its tests.
			specs := Generate(netip.MustParseAddr("127.0.36.1"), bc.n, tm)
			// Times are the last run's; memory is the largest growth seen
			// (later runs reuse pages the first one made resident).
			var last, peak fleetCost
			for b.Loop() {
				last = measure(b, specs, nil)
				peak.rss, peak.heap = max(peak.rss, last.rss), max(peak.heap, last.heap)
			}
			b.ReportMetric(float64(last.start)/1e6, "ms-start")
			b.ReportMetric(float64(last.close)/1e6, "ms-close")
			b.ReportMetric(float64(peak.rss)/(1<<20), "MiB-RSS")
			b.ReportMetric(float64(peak.heap)/(1<<20), "MiB-heap")
			b.ReportMetric(float64(last.goroutines), "goroutines")
		})
	}
}
