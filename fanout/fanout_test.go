package fanout

import (
	"context"
	"errors"
	"fmt"
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
