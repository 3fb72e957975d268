package cli

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/rmm-project/rmm/bmc"
	"github.com/rmm-project/rmm/inventory"
	"github.com/rmm-project/rmm/journal"
)

// openFleet loads the inventory, applies the selector and builds the fleet:
// the first steps of every command that talks to BMCs.
func openFleet(env *Env, g *globalOptions, selector []string) (*fleet, []*inventory.Host, error) {
	inv, err := loadInventory(env, g)
	if err != nil {
		return nil, nil, err
	}
	hosts, err := selectHosts(inv, selector)
	if err != nil {
		return nil, nil, err
	}
	f, err := newFleet(env, inv)
	if err != nil {
		return nil, nil, err
	}
	return f, hosts, nil
}

// actionResult is one host's row for a state-changing action (power on,
// off, cycle, reset, soft; sel clear), in tables and JSON. Before and After
// are the state the action changes: power state, or SEL entry count.
type actionResult struct {
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

// stateChange is one journaled action over a fleet.
type stateChange struct {
	env    *Env
	fleet  *fleet
	opts   fleetOptions
	name   string // "power cycle", "sel clear": the journal's action
	label  string // what the result rows say in their action column
	reason string
	// do runs on an open session whose identity was checked. It fills
	// r.Before and r.After and reports whether the state-changing request
	// may have reached the BMC (then the journal gets a line, whatever the
	// outcome).
	do func(ctx context.Context, c *bmc.Conn, r *actionResult) (sent bool, err error)
}

// run performs the action on every host: identity check first, one journal
// line per host as soon as it finishes (an interrupted run leaves exactly
// the lines for what was done), then the table, per-host errors, summary
// and exit code.
func (sc *stateChange) run(ctx context.Context, hosts []*inventory.Host) error {
	jr, err := openJournal(sc.env)
	if err != nil {
		return err
	}
	defer jr.Close()
	runID := newRunID()
	operator := journal.Operator(sc.env.getenv)

	rs := runFleet(ctx, sc.env, hosts, sc.opts, sc.name, func(ctx context.Context, h *inventory.Host) (actionResult, error) {
		start := time.Now()
		r := actionResult{Host: h.Name, BMC: h.Addr.String(), Action: sc.label}
		sent := false
		err := sc.fleet.withConn(ctx, h, func(c *bmc.Conn) error {
			r.Protocol = string(c.Protocol())
			if _, err := c.VerifyIdentity(ctx); err != nil {
				return err
			}
			var err error
			sent, err = sc.do(ctx, c, &r)
			return err
		})
		r.DurationMS = time.Since(start).Milliseconds()
		r.Result, r.Error, r.Hint = bmc.Classify(err), errString(err), bmc.Hint(err)
		if sent {
			e := journal.Entry{Time: start.UTC(), Operator: operator, Reason: sc.reason, Host: h.Name, BMC: h.Addr.String(),
				Protocol: r.Protocol, Action: sc.name, Before: r.Before, After: r.After,
				Result: string(r.Result), Error: r.Error, DurationMS: r.DurationMS, Run: runID}
			if errors.Is(err, context.Canceled) {
				e.Result = "interrupted"
				e.Error = "interrupted after the request was sent; the BMC may have acted"
			}
			if jerr := jr.Append(e); jerr != nil {
				fmt.Fprintf(sc.env.IO.ErrOut, "rmm: %v\n", jerr)
			}
		}
		return r, err
	})
	return finishActions(ctx, sc.env, sc.opts.output, sc.name, sc.label, hosts, rs,
		[]string{"host", "bmc", "protocol", "before", "after", "result"},
		func(r actionResult) []string {
			return []string{r.Host, r.BMC, r.Protocol, r.Before, r.After, string(r.Result)}
		})
}

// finishActions prints the rows (table, JSON or CSV), each failed host's
// error and hint, and the summary, and decides the exit code. A host never
// started (Ctrl-C) still gets a row.
func finishActions(ctx context.Context, env *Env, format, name, label string, hosts []*inventory.Host, rs []fanoutResult[actionResult],
	header []string, row func(actionResult) []string) error {
	results := make([]actionResult, len(rs))
	rows := make([][]string, len(rs))
	failed := 0
	for i, r := range rs {
		results[i] = r.Value
		if results[i].Host == "" {
			results[i] = actionResult{Host: hosts[i].Name, BMC: hosts[i].Addr.String(), Action: label, Result: bmc.Classify(r.Err), Error: errString(r.Err)}
		}
		if r.Err != nil {
			failed++
		}
		rows[i] = row(results[i])
	}
	if err := writeRecords(env.IO.Out, format, header, rows, results); err != nil {
		return err
	}
	reportErrors(env, rs)
	code := summarize(env, len(rs), failed, name)
	if ctx.Err() != nil {
		fmt.Fprintf(env.IO.ErrOut, "rmm: interrupted: sessions closed; the journal has a line for every host that was acted on\n")
		return silentExit(ExitInterrupted)
	}
	return silentExit(code)
}

// dryRun shows what would be done, without touching the network or
// resolving any password.
func dryRun(env *Env, f *fleet, hosts []*inventory.Host, what string) error {
	var rows [][]string
	for _, h := range hosts {
		src := "none"
		if cs := f.inv.CredentialsFor(h); cs != nil {
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
		return nil, fmt.Errorf("%w\nhint: set RMM_AUDIT_LOG to a writable file; rmm changes nothing without a journal", err)
	}
	return j, nil
}

// newRunID ties the journal lines of one invocation together.
func newRunID() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
