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
// sockets at once or flood a management network. (make bench: on 1,000
// simulated BMCs, -j 16, 256 and 1000 were no faster than 64.)
const DefaultJobs = 64

// waitingPerJob bounds the items in flight when Patience lets waiting items
// stop counting against Jobs: at most Jobs * waitingPerJob at once.
const waitingPerJob = 8

// Options tune a Run.
type Options struct {
	// Jobs is the maximum number of items in flight (DefaultJobs if <= 0);
	// with Patience, the maximum number being worked on.
	Jobs int
	// Timeout is each item's own deadline, counted from when it starts;
	// zero means none beyond ctx.
	Timeout time.Duration
	// Patience, when positive, is how long an item runs before it stops
	// counting against Jobs: an item still running by then is waiting for
	// a dead or slow peer, not working, and the next item starts beside
	// it. Without it, Jobs dead BMCs stall the whole run for their
	// timeout, and the dead BMCs of a rack that is down add up, Jobs at a
	// time. Items are still taken in order, and at most Jobs*8 run at
	// once, waiting or not. Zero keeps Jobs a strict bound (for actions whose
	// operator uses -j to pace them).
	Patience time.Duration
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
	results := make([]Result[T], n)
	if n == 0 {
		return results
	}
	// working holds a token per item being worked on; inFlight one per
	// item running at all. Without Patience an item holds its working
	// token to the end, and inFlight never binds.
	working := make(chan struct{}, min(jobs, n))
	inFlight := make(chan struct{}, min(jobs*waitingPerJob, n))

	var wg sync.WaitGroup
	var mu sync.Mutex
	done := 0
	finish := func() {
		if opts.Progress == nil {
			return
		}
		mu.Lock()
		done++
		opts.Progress(done, n)
		mu.Unlock()
	}

	i := 0
feed:
	for ; i < n; i++ {
		select {
		case inFlight <- struct{}{}:
		case <-ctx.Done():
			break feed
		}
		select {
		case working <- struct{}{}:
		case <-ctx.Done():
			<-inFlight
			break feed
		}
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			var once sync.Once
			release := func() { once.Do(func() { <-working }) }
			if opts.Patience > 0 {
				t := time.AfterFunc(opts.Patience, release)
				defer t.Stop()
			}
			results[i] = runOne(ctx, opts.Timeout, i, fn)
			release()
			<-inFlight
			finish()
		}(i)
	}
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
