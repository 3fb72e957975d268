package cli

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/rmm-project/rmm/journal"
)

func init() { register(newJournalCmd) }

// journalOptions holds rmm journal's flags.
type journalOptions struct {
	env    *Env
	host   string
	since  string
	last   int
	output string
}

func newJournalCmd(env *Env, g *globalOptions) *cobra.Command {
	o := &journalOptions{env: env}
	cmd := &cobra.Command{
		Use:     "journal",
		Aliases: []string{"audit-log"},
		Short:   "Show the audit journal of power and SEL actions",
		Long: `Show the audit journal: one line per state-changing action (power
on/off/cycle/reset/soft, sel clear) with time, operator, reason, host, BMC
IP, protocol, the state before and after, the result and how long it took.

The journal is $RMM_AUDIT_LOG, else $XDG_STATE_HOME/rmm/audit.log (else
~/.local/state/rmm/audit.log), one JSON object per line, appended by every
rmm process; actions are also sent to syslog (facility auth) when there is
one.`,
		Example: `  rmm journal
  rmm journal --host db1 --since 24h
  rmm journal -o json | jq 'select(.result != "ok")'`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error { return journalRun(o) },
	}
	cmd.Flags().StringVar(&o.host, "host", "", "only this host")
	cmd.Flags().StringVar(&o.since, "since", "", "only entries newer than a duration (24h) or a time (2026-11-30T02:00:00Z)")
	cmd.Flags().IntVarP(&o.last, "last", "n", 0, "only the last N entries")
	cmd.Flags().StringVarP(&o.output, "output", "o", FormatTable, "output format: table, json")
	return cmd
}

func journalRun(o *journalOptions) error {
	if err := checkFormat(o.output, FormatTable, FormatJSON); err != nil {
		return err
	}
	var since time.Time
	if o.since != "" {
		t, err := parseSince(o.since, o.env.now())
		if err != nil {
			return err
		}
		since = t
	}
	path := o.env.getenv("RMM_AUDIT_LOG")
	if path == "" {
		path = journal.DefaultPath(o.env.getenv)
	}
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		fmt.Fprintf(o.env.IO.ErrOut, "journal %s is empty: no action has been recorded yet\n", path)
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	entries, bad := journal.Read(f)
	for _, e := range bad {
		fmt.Fprintf(o.env.IO.ErrOut, "warning: %s: %v\n", path, e)
	}
	var keep []journal.Entry
	for _, e := range entries {
		if o.host != "" && e.Host != o.host {
			continue
		}
		if !since.IsZero() && e.Time.Before(since) {
			continue
		}
		keep = append(keep, e)
	}
	if o.last > 0 && len(keep) > o.last {
		keep = keep[len(keep)-o.last:]
	}
	if keep == nil {
		keep = []journal.Entry{}
	}
	var rows [][]string
	for _, e := range keep {
		res := e.Result
		if e.Error != "" && res != "ok" {
			res += ": " + e.Error
		}
		rows = append(rows, []string{e.Time.Local().Format("2006-01-02 15:04:05"), e.Operator, e.Host, e.BMC, e.Protocol, e.Action,
			e.Before + "→" + e.After, res, e.Reason})
	}
	return writeRecords(o.env.IO.Out, o.output, []string{"time", "operator", "host", "bmc", "protocol", "action", "change", "result", "reason"}, rows, keep)
}

// parseSince reads "24h", "30m", "7d" or an RFC 3339 time / date.
func parseSince(s string, now time.Time) (time.Time, error) {
	if strings.HasSuffix(s, "d") {
		var days int
		if _, err := fmt.Sscanf(s, "%dd", &days); err == nil && days >= 0 {
			return now.Add(-time.Duration(days) * 24 * time.Hour), nil
		}
	}
	if d, err := time.ParseDuration(s); err == nil {
		if d < 0 {
			return time.Time{}, usageErrorf("--since %s: a duration must be positive", s)
		}
		return now.Add(-d), nil
	}
	for _, layout := range []string{time.RFC3339, "2006-01-02T15:04:05", "2006-01-02 15:04:05", "2006-01-02 15:04", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, s, time.Local); err == nil {
			return t, nil
		}
	}
	return time.Time{}, usageErrorf("--since %q: want a duration (24h, 30m, 7d) or a time (2026-11-30T02:00:00Z, 2026-11-30)", s)
}
