// Package fanout runs one operation per host with bounded concurrency and a
// per-host deadline, and keeps going when hosts fail. It is the engine of
// every multi-host command: a dead BMC costs its own deadline, not everyone's.
package fanout

import (
	"context"
	"sync"
	"time"
)

// DefaultJobs is the default number of hosts worked on at once. IPMI and
// Redfish sessions are small and mostly waiting, so this is far above the
// CPU count; it is bounded so a 10,000-host run does not open 10,000
// sockets at once or flood a management network.
const DefaultJobs = 64

// Options tune a Run.
type Options struct {
	// Jobs is the maximum number of items in flight (DefaultJobs if <= 0).
	Jobs int
	// Timeout is each item's own deadline, counted from when it starts;
	// zero means none beyond ctx.
	Timeout time.Duration
	// Progress, if set, is called after each item finishes with the number
	// done so far. Calls are serialised.
	Progress func(done, total int)
}

// Result is one item's outcome.
type Result[T any] struct {
	Value T
	Err   error
	// Started is false for items never begun because ctx was cancelled.
	Started  bool
	Duration time.Duration
}

// Run calls fn for items 0..n-1 and returns their results in item order.
// It never stops early because an item failed. When ctx is cancelled, items
// already running see their context cancelled (and must clean up: close
// sessions), and items not yet started are reported with ctx's error
// without fn being called.
func Run[T any](ctx context.Context, n int, opts Options, fn func(ctx context.Context, i int) (T, error)) []Result[T] {
	jobs := opts.Jobs
	if jobs <= 0 {
		jobs = DefaultJobs
	}
	jobs = min(jobs, n)
	results := make([]Result[T], n)
	if n == 0 {
		return results
	}

	next := make(chan int)
	var wg sync.WaitGroup
	var mu sync.Mutex
	done := 0
	finish := func() {
		if opts.Progress == nil {
			return
		}
		mu.Lock()
		done++
		d := done
		opts.Progress(d, n)
		mu.Unlock()
	}

	for w := 0; w < jobs; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				results[i] = runOne(ctx, opts.Timeout, i, fn)
				finish()
			}
		}()
	}

	i := 0
feed:
	for ; i < n; i++ {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	for ; i < n; i++ {
		results[i] = Result[T]{Err: ctx.Err()}
	}
	return results
}

func runOne[T any](ctx context.Context, timeout time.Duration, i int, fn func(context.Context, int) (T, error)) Result[T] {
	if err := ctx.Err(); err != nil {
		return Result[T]{Err: err}
	}
	start := time.Now()
	ictx, cancel := ctx, context.CancelFunc(func() {})
	if timeout > 0 {
		ictx, cancel = context.WithTimeout(ctx, timeout)
	}
	defer cancel()
	v, err := fn(ictx, i)
	return Result[T]{Value: v, Err: err, Started: true, Duration: time.Since(start)}
}

// Failed counts the results with an error.
func Failed[T any](rs []Result[T]) int {
	n := 0
	for _, r := range rs {
		if r.Err != nil {
			n++
		}
	}
	return n
}
