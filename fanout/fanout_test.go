package fanout

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestRunKeepsOrderAndGoesOnAfterFailures(t *testing.T) {
	tests := []struct {
		name string
		n    int
		jobs int
	}{
		{"one", 1, 0},
		{"more items than jobs", 50, 4},
		{"more jobs than items", 3, 64},
		{"none", 0, 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rs := Run(context.Background(), tt.n, Options{Jobs: tt.jobs}, func(ctx context.Context, i int) (int, error) {
				if i%3 == 0 {
					return 0, fmt.Errorf("item %d failed", i)
				}
				return i * 10, nil
			})
			if len(rs) != tt.n {
				t.Fatalf("got %d results, want %d", len(rs), tt.n)
			}
			for i, r := range rs {
				if !r.Started {
					t.Errorf("item %d never started", i)
				}
				if i%3 == 0 {
					if r.Err == nil || r.Err.Error() != fmt.Sprintf("item %d failed", i) {
						t.Errorf("item %d: err = %v", i, r.Err)
					}
				} else if r.Err != nil || r.Value != i*10 {
					t.Errorf("item %d: got %d, %v", i, r.Value, r.Err)
				}
			}
			want := (tt.n + 2) / 3
			if got := Failed(rs); got != want {
				t.Errorf("Failed = %d, want %d", got, want)
			}
		})
	}
}

func TestRunBoundsConcurrency(t *testing.T) {
	var inFlight, peak atomic.Int32
	Run(context.Background(), 40, Options{Jobs: 5}, func(ctx context.Context, i int) (struct{}, error) {
		n := inFlight.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		time.Sleep(2 * time.Millisecond)
		inFlight.Add(-1)
		return struct{}{}, nil
	})
	if p := peak.Load(); p > 5 || p < 2 {
		t.Fatalf("peak concurrency %d, want 2..5", p)
	}
}

// A slow item gets its own deadline; the others do not wait for it.
func TestRunPerItemTimeout(t *testing.T) {
	start := time.Now()
	rs := Run(context.Background(), 20, Options{Jobs: 20, Timeout: 50 * time.Millisecond}, func(ctx context.Context, i int) (int, error) {
		if i == 7 {
			<-ctx.Done() // a dead BMC
			return 0, ctx.Err()
		}
		return i, nil
	})
	if !errors.Is(rs[7].Err, context.DeadlineExceeded) {
		t.Fatalf("item 7: %v, want deadline exceeded", rs[7].Err)
	}
	if Failed(rs) != 1 {
		t.Fatalf("%d failed, want 1", Failed(rs))
	}
	if el := time.Since(start); el > 5*time.Second {
		t.Fatalf("run took %v: the timeout did not bound it", el)
	}
}

func TestRunCancelStopsFeeding(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var calls atomic.Int32
	rs := Run(ctx, 100, Options{Jobs: 2}, func(c context.Context, i int) (int, error) {
		if calls.Add(1) == 2 { // both workers busy: cancel the run
			cancel()
		}
		<-c.Done()
		return 0, c.Err()
	})
	if got := calls.Load(); got > 2 {
		t.Fatalf("fn called %d times after cancel, want 2", got)
	}
	notStarted := 0
	for _, r := range rs {
		if !r.Started {
			notStarted++
			if !errors.Is(r.Err, context.Canceled) {
				t.Fatalf("unstarted item err = %v", r.Err)
			}
		}
	}
	if notStarted < 90 {
		t.Fatalf("%d items not started, want >= 90", notStarted)
	}
}

func TestRunProgress(t *testing.T) {
	var last, calls int
	Run(context.Background(), 10, Options{Jobs: 3, Progress: func(done, total int) {
		calls++
		if done != last+1 || total != 10 {
			t.Errorf("progress %d/%d after %d", done, total, last)
		}
		last = done
	}}, func(ctx context.Context, i int) (int, error) { return i, nil })
	if calls != 10 {
		t.Fatalf("progress called %d times", calls)
	}
}

// With Patience, items that wait (dead BMCs) stop holding their job: the
// rest of the run goes on beside them. Without it, two waiting items with
// Jobs 2 would stall every later item until they end.
func TestRunPatienceLetsWaitingItemsStepAside(t *testing.T) {
	for _, tt := range []struct {
		name     string
		patience time.Duration
		wantAll  bool // every fast item finishes while the slow ones wait
	}{
		{"patience", 10 * time.Millisecond, true},
		{"no patience", 0, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			release := make(chan struct{})
			var fast atomic.Int32
			var fastFirst atomic.Bool // the later items all ran before the release
			allFast := make(chan struct{})
			const n = 20
			go func() {
				defer close(release)
				select {
				case <-allFast:
					fastFirst.Store(true)
				case <-time.After(300 * time.Millisecond):
				}
			}()
			rs := Run(context.Background(), n, Options{Jobs: 2, Patience: tt.patience}, func(ctx context.Context, i int) (int, error) {
				if i < 2 {
					<-release // a dead BMC: waits until the test lets it go
					return i, nil
				}
				if fast.Add(1) == n-2 {
					close(allFast)
				}
				return i, nil
			})
			if got := fastFirst.Load(); got != tt.wantAll {
				t.Fatalf("later items all ran while the first two waited: %v, want %v", got, tt.wantAll)
			}
			if Failed(rs) != 0 || len(rs) != n {
				t.Fatalf("%d results, %d failed", len(rs), Failed(rs))
			}
		})
	}
}

// Patience never lets more than Jobs*8 items run at once, and every item
// runs once.
func TestRunPatienceBoundsInFlight(t *testing.T) {
	const jobs, n = 2, 40
	release := make(chan struct{})
	var mu sync.Mutex
	var started []int
	var inFlight, peak atomic.Int32
	go func() {
		defer close(release)
		deadline := time.After(5 * time.Second)
		for peak.Load() < jobs*waitingPerJob {
			select {
			case <-deadline:
				return
			case <-time.After(time.Millisecond):
			}
		}
		time.Sleep(50 * time.Millisecond) // room for a bug to start one more
	}()
	Run(context.Background(), n, Options{Jobs: jobs, Patience: time.Millisecond}, func(ctx context.Context, i int) (int, error) {
		mu.Lock()
		started = append(started, i)
		mu.Unlock()
		c := inFlight.Add(1)
		for {
			p := peak.Load()
			if c <= p || peak.CompareAndSwap(p, c) {
				break
			}
		}
		<-release
		inFlight.Add(-1)
		return i, nil
	})
	if p := peak.Load(); p != jobs*waitingPerJob {
		t.Fatalf("peak in flight %d, want %d", p, jobs*waitingPerJob)
	}
	slices.Sort(started)
	for k, i := range started {
		if k != i {
			t.Fatalf("items started %v, want each of 0..%d once", started, n-1)
		}
	}
	if len(started) != n {
		t.Fatalf("%d items started, want %d", len(started), n)
	}
}
