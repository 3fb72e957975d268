// Command rmm is out-of-band server management that works when DNS is down.
// See README.md, or run rmm --help.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/rmm-project/rmm/cli"
)

func main() {
	// Signals only cancel the root context; every command then closes its
	// sessions and writes its journal before returning. SIGHUP is the
	// terminal going away (an ssh drop): rmm console must close its SOL
	// session then too, not leave it holding the host's serial port.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	code := cli.Main(ctx, os.Args[1:], &cli.Env{IO: cli.System(), Providers: cli.DefaultProviders()})
	stop()
	os.Exit(code)
}
