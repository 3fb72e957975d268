// Package cli is rmm's command tree. Each command has an options struct
// holding its flags and dependencies, a newXCmd that only binds flags, and
// an xRun that does the work; tests call the run functions (or Main) with
// buffer-backed streams and in-process simulated BMCs.
package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/rmm-project/rmm/bmc"
)

// Env holds what commands need from the outside world, so tests can replace
// any of it.
type Env struct {
	IO *IOStreams
	// Getenv reads the environment.
	Getenv func(string) string
	// Now is the clock.
	Now func() time.Time
	// Providers builds protocol providers; nil means the real ones.
	Providers map[bmc.Protocol]bmc.ProviderFunc
}

func (e *Env) getenv(k string) string {
	if e.Getenv == nil {
		return os.Getenv(k)
	}
	return e.Getenv(k)
}

func (e *Env) now() time.Time {
	if e.Now == nil {
		return time.Now()
	}
	return e.Now()
}

// globalOptions are the flags every command shares.
type globalOptions struct {
	inventory string
}

// Main runs rmm with args (without the program name) and returns the exit
// code. ctx is cancelled on SIGINT/SIGTERM by the caller.
func Main(ctx context.Context, args []string, env *Env) int {
	root := newRootCmd(env)
	root.SetArgs(args)
	root.SetIn(env.IO.In)
	root.SetOut(env.IO.Out)
	root.SetErr(env.IO.ErrOut)
	err := root.ExecuteContext(ctx)
	defer env.IO.Scrub.Flush()
	if err == nil {
		return ExitOK
	}
	code := exitCode(err)
	var ee *ExitError
	silent := errors.As(err, &ee) && ee.Silent
	if !silent {
		printError(env.IO, err)
	}
	return code
}

// printError writes "rmm: <error>" and any hint lines to stderr.
func printError(io *IOStreams, err error) {
	msg := err.Error()
	fmt.Fprintf(io.ErrOut, "rmm: %s\n", msg)
	if h := bmc.Hint(err); h != "" {
		fmt.Fprintf(io.ErrOut, "hint: %s\n", h)
	}
}

func newRootCmd(env *Env) *cobra.Command {
	g := &globalOptions{}
	root := &cobra.Command{
		Use:   "rmm",
		Short: "Out-of-band server management that works when DNS is down",
		Long: `rmm reaches servers' management controllers (BMCs) over IPMI and Redfish,
by name, from a static inventory that maps each host to a fixed BMC IP
address. It never asks DNS, needs no database or central server, and keeps
working when everything else is down.

The inventory is read from -i/--inventory, else $RMM_INVENTORY, else
./inventory.yaml, else /etc/rmm/inventory.yaml.

Hosts are chosen with a selector: all, names (db1), comma lists (db1,db2),
ranges (db[01-12]), globs ('web*'), groups (@db), labels (site=ams), and
exclusions (!db3 or -db3 inside a list: all,!db3).

Data goes to stdout; progress, warnings and summaries to stderr.

` + exitCodeHelp,
		Example: `  rmm list @db
  rmm power status all
  rmm power cycle db1 --reason "kernel panic, INC-4312"
  rmm console db1
  rmm sel db1 --severity critical`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().StringVarP(&g.inventory, "inventory", "i", "", "inventory file (default $RMM_INVENTORY, ./inventory.yaml, /etc/rmm/inventory.yaml)")
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return &ExitError{Code: ExitUsage, Err: fmt.Errorf("%w\nrun '%s --help' for usage", err, c.CommandPath())}
	})
	root.CompletionOptions.DisableDefaultCmd = true

	for _, mk := range commands {
		root.AddCommand(mk(env, g))
	}
	return root
}

// commands lists the constructors of rmm's subcommands. Each file that
// defines a command adds itself here, in the order help lists them.
var commands []func(env *Env, g *globalOptions) *cobra.Command

func register(mk func(env *Env, g *globalOptions) *cobra.Command) { commands = append(commands, mk) }

// argsError turns cobra's argument-count messages into exit code 2.
func exactArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return usageErrorf("%s takes %d argument(s), got %d: %s\nrun '%s --help' for usage", cmd.CommandPath(), n, len(args), strings.Join(args, " "), cmd.CommandPath())
		}
		return nil
	}
}
