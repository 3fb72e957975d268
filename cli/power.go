package cli

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/rmm-project/rmm/bmc"
	"github.com/rmm-project/rmm/inventory"
)

func init() { register(newPowerCmd) }

// powerOptions holds rmm power's flags and dependencies.
type powerOptions struct {
	env *Env
	g   *globalOptions
	fleetOptions

	action      string // "status" or a bmc.PowerAction
	selector    []string
	yes         bool
	dryRun      bool
	reason      string
	wait        bool
	waitSet     bool
	waitTimeout time.Duration
}

func newPowerCmd(env *Env, g *globalOptions) *cobra.Command {
	o := &powerOptions{env: env, g: g}
	cmd := &cobra.Command{
		Use:   "power status|on|off|cycle|reset|soft SELECTOR...",
		Short: "Read or change chassis power, by host name",
		Long: `Read or change the chassis power of the selected hosts, over IPMI or Redfish
(per host, in the inventory's protocol order; the PROTOCOL column says which
answered).

  status  read the power state
  on      power on (already on: success)
  off     hard power off, no OS shutdown (already off: success)
  cycle   hard off, then on (an off host is powered on)
  reset   hard reset without removing power (fails on an off host)
  soft    ask the OS to shut down via ACPI (already off: success)

off, cycle, reset and soft are destructive: on a terminal rmm names every
host and BMC IP and asks first (more than 5 hosts: type the count); without
a terminal it refuses unless --yes. When the inventory records a host's
GUID, UUID or serial, rmm reads it from the BMC first and refuses on a
mismatch, so a stale IP never reboots the wrong server.

Every action is appended to the audit journal ($RMM_AUDIT_LOG, else
$XDG_STATE_HOME/rmm/audit.log) and to syslog; see rmm journal.

-j bounds the BMCs worked on at once. For status, a BMC that has not
answered for 250ms stops counting against it (at most 8 x -j sessions stay
open), so dead BMCs do not hold up the rest; actions keep -j exact.`,
		Example: `  rmm power status all
  rmm power cycle db1 --reason "kernel panic, INC-4312"
  rmm power off @web,-web01 --yes --reason "rack r12 maintenance"
  rmm power cycle 'db[1-3]' --dry-run
  rmm power status site=ams -o json`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) < 2 {
				return usageErrorf("rmm power needs an action and a host selector, e.g. 'rmm power status db1'\nrun 'rmm power --help' for usage")
			}
			return nil
		},
		ValidArgsFunction: func(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
			if len(args) == 0 {
				return []string{"status", "on", "off", "cycle", "reset", "soft"}, cobra.ShellCompDirectiveNoFileComp
			}
			return completeSelector(env, g)(cmd, args[1:], toComplete)
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			o.action, o.selector = args[0], args[1:]
			o.waitSet = cmd.Flags().Changed("wait")
			return powerRun(cmd.Context(), o)
		},
	}
	o.fleetOptions.bind(cmd, FormatTable, FormatJSON, FormatCSV)
	cmd.Flags().BoolVarP(&o.yes, "yes", "y", false, "do not ask for confirmation (for scripts)")
	cmd.Flags().BoolVar(&o.dryRun, "dry-run", false, "show host, BMC IP, protocols, credentials source and action, then stop")
	cmd.Flags().StringVar(&o.reason, "reason", "", "why, for the audit journal (e.g. an incident number)")
	cmd.Flags().BoolVar(&o.wait, "wait", false, "poll until the BMC confirms the new state (default for on, off and cycle in a terminal)")
	cmd.Flags().DurationVar(&o.waitTimeout, "wait-timeout", 2*time.Minute, "how long --wait polls")
	return cmd
}

func powerRun(ctx context.Context, o *powerOptions) error {
	if err := o.fleetOptions.check(FormatTable, FormatJSON, FormatCSV); err != nil {
		return err
	}
	var action bmc.PowerAction
	switch o.action {
	case "status":
	case "on", "off", "cycle", "reset", "soft":
		action = bmc.PowerAction(o.action)
	default:
		return usageErrorf("unknown power action %q: use status, on, off, cycle, reset or soft", o.action)
	}
	if o.waitTimeout <= 0 {
		return usageErrorf("--wait-timeout must be positive")
	}
	f, hosts, err := openFleet(o.env, o.g, o.selector)
	if err != nil {
		return err
	}
	if o.dryRun {
		return dryRun(o.env, f, hosts, "power "+o.action)
	}
	if action == "" {
		return powerStatus(ctx, o, f, hosts)
	}
	if action.Destructive() {
		if err := confirm(o.env, o.yes, "power "+o.action, hosts); err != nil {
			return err
		}
	}
	wait := o.wait
	if !o.waitSet {
		wait = (o.env.IO.OutTTY || o.env.IO.ErrTTY) && (action == bmc.ActionOn || action == bmc.ActionOff || action == bmc.ActionCycle)
	}
	sc := &stateChange{env: o.env, fleet: f, opts: o.fleetOptions, name: "power " + o.action, label: o.action, reason: o.reason,
		do: func(ctx context.Context, c *bmc.Conn, r *actionResult) (bool, error) {
			before, err := c.PowerState(ctx)
			if err != nil {
				return false, err
			}
			r.Before = string(before)
			err = c.SetPower(ctx, action)
			// The journal records every request that may have reached the
			// BMC; a failure the provider marks as "not sent" is only an
			// error on the screen.
			if err != nil {
				return !errors.Is(err, bmc.ErrNotSent), err
			}
			after, err := settle(ctx, c, action, before, wait, o.waitTimeout)
			r.After = string(after)
			return true, err
		}}
	return sc.run(ctx, hosts)
}

// settle reads the state after an action. With wait it polls, bounded by
// waitTimeout, until the BMC reports the state the action leads to; a cycle
// or reset must also not be judged by a reading taken before the BMC began.
func settle(ctx context.Context, c *bmc.Conn, a bmc.PowerAction, before bmc.PowerState, wait bool, waitTimeout time.Duration) (bmc.PowerState, error) {
	want := a.Expected()
	if !wait {
		st, err := c.PowerState(ctx)
		if err != nil {
			return bmc.PowerUnknown, err
		}
		return st, nil
	}
	// The per-host --timeout covers talking to the BMC; waiting for a
	// server to power off or on gets its own budget.
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), waitTimeout)
	defer cancel()
	stop := context.AfterFunc(ctx, func() {
		if errors.Is(context.Cause(ctx), context.Canceled) {
			cancel()
		}
	})
	defer stop()
	delay := 200 * time.Millisecond
	last := bmc.PowerUnknown
	for i := 0; i < 1000; i++ {
		st, err := c.PowerState(wctx)
		if err == nil {
			last = st
			if st == want {
				return st, nil
			}
		}
		select {
		case <-wctx.Done():
			if ctx.Err() != nil && errors.Is(ctx.Err(), context.Canceled) {
				return last, ctx.Err()
			}
			return last, fmt.Errorf("%w: the BMC still reports %s after %s (want %s)", bmc.ErrTimeout, last, waitTimeout, want)
		case <-time.After(delay):
		}
		delay = min(delay*2, 2*time.Second)
	}
	return last, fmt.Errorf("%w: gave up polling", bmc.ErrTimeout)
}

func powerStatus(ctx context.Context, o *powerOptions, f *fleet, hosts []*inventory.Host) error {
	rs := runFleet(ctx, o.env, hosts, o.fleetOptions.reading(), "power status", func(ctx context.Context, h *inventory.Host) (actionResult, error) {
		start := time.Now()
		r := actionResult{Host: h.Name, BMC: h.Addr.String(), Action: "status"}
		err := f.withConn(ctx, h, func(c *bmc.Conn) error {
			r.Protocol = string(c.Protocol())
			st, err := c.PowerState(ctx)
			r.After = string(st)
			return err
		})
		r.DurationMS = time.Since(start).Milliseconds()
		r.Result, r.Error, r.Hint = bmc.Classify(err), errString(err), bmc.Hint(err)
		return r, err
	})
	return finishActions(ctx, o.env, o.output, "power status", "status", hosts, rs,
		[]string{"host", "bmc", "protocol", "power", "result"},
		func(r actionResult) []string { return []string{r.Host, r.BMC, r.Protocol, r.After, string(r.Result)} })
}
