package cli

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/rmm-project/rmm/bmc"
	"github.com/rmm-project/rmm/inventory"
	"github.com/rmm-project/rmm/journal"
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

// powerResult is one host's row, in tables and JSON.
type powerResult struct {
	Host       string      `json:"host"`
	BMC        string      `json:"bmc"`
	Protocol   string      `json:"protocol,omitempty"`
	Action     string      `json:"action"`
	Before     string      `json:"before,omitempty"`
	After      string      `json:"after,omitempty"`
	Result     bmc.Outcome `json:"result"`
	Error      string      `json:"error,omitempty"`
	Hint       string      `json:"hint,omitempty"`
	DurationMS int64       `json:"duration_ms"`
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
	inv, err := loadInventory(o.env, o.g)
	if err != nil {
		return err
	}
	hosts, err := selectHosts(inv, o.selector)
	if err != nil {
		return err
	}
	f, err := newFleet(o.env, inv)
	if err != nil {
		return err
	}
	if o.dryRun {
		return dryRun(o.env, f, inv, hosts, "power "+o.action)
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
	jr, err := openJournal(o.env)
	if err != nil {
		return err
	}
	defer jr.Close()
	run := newRunID()
	operator := journal.Operator(o.env.getenv)

	rs := runFleet(ctx, o.env, hosts, o.fleetOptions, "power "+o.action, func(ctx context.Context, h *inventory.Host) (powerResult, error) {
		start := time.Now()
		r := powerResult{Host: h.Name, BMC: h.Addr.String(), Action: o.action}
		sent := false
		err := f.withConn(ctx, h, func(c *bmc.Conn) error {
			r.Protocol = string(c.Protocol())
			if _, err := c.VerifyIdentity(ctx); err != nil {
				return err
			}
			before, err := c.PowerState(ctx)
			if err != nil {
				return err
			}
			r.Before = string(before)
			err = c.SetPower(ctx, action)
			// The journal records every request that may have reached the
			// BMC; a failure the provider marks as "not sent" is only an
			// error on the screen.
			sent = !errors.Is(err, bmc.ErrNotSent)
			if err != nil {
				return err
			}
			after, err := settle(ctx, c, action, before, wait, o.waitTimeout)
			r.After = string(after)
			return err
		})
		r.DurationMS = time.Since(start).Milliseconds()
		r.Result, r.Error, r.Hint = bmc.Classify(err), errString(err), bmc.Hint(err)
		if sent {
			// One journal line per host as it finishes: an interrupted run
			// leaves exactly the lines for what was done.
			e := journal.Entry{Time: start.UTC(), Operator: operator, Reason: o.reason, Host: h.Name, BMC: h.Addr.String(),
				Protocol: r.Protocol, Action: "power " + o.action, Before: r.Before, After: r.After,
				Result: string(r.Result), Error: r.Error, DurationMS: r.DurationMS, Run: run}
			if errors.Is(err, context.Canceled) {
				e.Result = "interrupted"
				e.Error = "interrupted after the request was sent; the BMC may have acted"
			}
			if jerr := jr.Append(e); jerr != nil {
				fmt.Fprintf(o.env.IO.ErrOut, "rmm: %v\n", jerr)
			}
		}
		return r, err
	})
	return finishPower(ctx, o, hosts, rs)
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
	rs := runFleet(ctx, o.env, hosts, o.fleetOptions.reading(), "power status", func(ctx context.Context, h *inventory.Host) (powerResult, error) {
		start := time.Now()
		r := powerResult{Host: h.Name, BMC: h.Addr.String(), Action: "status"}
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
	return finishPower(ctx, o, hosts, rs)
}

// finishPower prints the table (or JSON/CSV), the per-host errors and the
// summary, and decides the exit code.
func finishPower(ctx context.Context, o *powerOptions, hosts []*inventory.Host, rs []fanoutResult[powerResult]) error {
	results := make([]powerResult, len(rs))
	failed := 0
	for i, r := range rs {
		results[i] = r.Value
		if results[i].Host == "" { // never started
			results[i] = powerResult{Host: hosts[i].Name, BMC: hosts[i].Addr.String(), Action: o.action, Result: bmc.Classify(r.Err), Error: errString(r.Err)}
		}
		if r.Err != nil {
			failed++
		}
	}
	var header []string
	var rows [][]string
	if o.action == "status" {
		header = []string{"host", "bmc", "protocol", "power", "result"}
		for _, r := range results {
			rows = append(rows, []string{r.Host, r.BMC, r.Protocol, r.After, string(r.Result)})
		}
	} else {
		header = []string{"host", "bmc", "protocol", "before", "after", "result"}
		for _, r := range results {
			rows = append(rows, []string{r.Host, r.BMC, r.Protocol, r.Before, r.After, string(r.Result)})
		}
	}
	if err := writeRecords(o.env.IO.Out, o.output, header, rows, results); err != nil {
		return err
	}
	reportErrors(o.env, rs)
	code := summarize(o.env, len(rs), failed, "power "+o.action)
	if ctx.Err() != nil {
		fmt.Fprintf(o.env.IO.ErrOut, "rmm: interrupted: sessions closed; the journal has a line for every host that was acted on\n")
		return silentExit(ExitInterrupted)
	}
	return silentExit(code)
}

// dryRun shows what would be done, without touching the network or
// resolving any password.
func dryRun(env *Env, f *fleet, inv *inventory.Inventory, hosts []*inventory.Host, what string) error {
	var rows [][]string
	for _, h := range hosts {
		src := "none"
		if cs := inv.CredentialsFor(h); cs != nil {
			src = cs.Name + ": user " + cs.User + ", password from " + cs.Source()
		}
		rows = append(rows, []string{h.Name, h.Addr.String(), strings.Join(h.Protocols, ","), src, what})
	}
	if err := writeTable(env.IO.Out, []string{"host", "bmc", "protocols", "credentials", "action"}, rows); err != nil {
		return err
	}
	fmt.Fprintf(env.IO.ErrOut, "dry run: nothing was sent to any BMC (%d hosts)\n", len(hosts))
	return nil
}

// openJournal opens the audit journal at $RMM_AUDIT_LOG or the default
// path. Syslog is used unless RMM_NO_SYSLOG=1 (tests).
func openJournal(env *Env) (*journal.Journal, error) {
	path := env.getenv("RMM_AUDIT_LOG")
	if path == "" {
		path = journal.DefaultPath(env.getenv)
	}
	j, err := journal.Open(path, env.getenv("RMM_NO_SYSLOG") != "1")
	if err != nil {
		return nil, fmt.Errorf("%w\nhint: set RMM_AUDIT_LOG to a writable file; rmm does not change power without a journal", err)
	}
	return j, nil
}

// newRunID ties the journal lines of one invocation together.
func newRunID() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
