// Command rmm is out-of-band server management that works when DNS is down.
// See README.md, or run rmm --help.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"syscall"

	"github.com/rmm-project/rmm/cli"
)

func main() {
	tuneGC()
	// Signals only cancel the root context; every command then closes its
	// sessions and writes its journal before returning. SIGHUP is the
	// terminal going away (an ssh drop): rmm console must close its SOL
	// session then too, not leave it holding the host's serial port.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	stopProfile := startProfile()
	code := cli.Main(ctx, os.Args[1:], &cli.Env{IO: cli.System(), Providers: cli.DefaultProviders()})
	stopProfile()
	stop()
	os.Exit(code)
}

// startProfile writes a CPU profile of the whole run to $RMM_CPUPROFILE
// when it is set (make bench uses it to show where a fleet run's time
// goes). It returns the function that finishes the file; os.Exit skips
// deferred calls, so main calls it explicitly.
func startProfile() func() {
	path := os.Getenv("RMM_CPUPROFILE")
	if path == "" {
		return func() {}
	}
	f, err := os.Create(path)
	if err != nil {
		fmt.Fprintf(os.Stderr, "rmm: RMM_CPUPROFILE: %v\n", err)
		return func() {}
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		fmt.Fprintf(os.Stderr, "rmm: RMM_CPUPROFILE: %v\n", err)
		_ = f.Close()
		return func() {}
	}
	return func() {
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			fmt.Fprintf(os.Stderr, "rmm: RMM_CPUPROFILE: %v\n", err)
		}
	}
}

// startHeap is the heap size of the first garbage collection. The runtime
// starts collecting at 4 MB, which a 1,000-host inventory and a thousand
// sessions pass many times over: `rmm list` on 10,000 hosts ran five
// collections, 40% of its CPU. Most rmm runs finish before reaching this
// size and never collect; a bigger one collects once, here.
const startHeap = 32 << 20

// tuneGC raises the size of the first collection to startHeap and returns
// to the runtime's default pacing after it, so a long-running command (rmm
// sim, rmm exporter, rmm console) keeps the usual heap bound. The runtime's
// first goal is 4 MB times GOGC/100. A GOGC in the environment is the
// user's choice, and left alone (GOGC=100 gives the runtime's default).
func tuneGC() {
	if os.Getenv("GOGC") != "" {
		return
	}
	debug.SetGCPercent(startHeap / (4 << 20) * 100)
	runtime.AddCleanup(new(gcSentinel), func(int) { debug.SetGCPercent(100) }, 0)
}

// gcSentinel is an object only the first collection frees. It holds a
// pointer so the allocator never batches it with other tiny objects,
// which could keep it alive.
type gcSentinel struct {
	_ *int
	_ [8]byte
}
