package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/rmm-project/rmm/bmc"
	"github.com/rmm-project/rmm/inventory"
)

func init() { register(newSELCmd) }

// selOptions holds rmm sel's flags and dependencies.
type selOptions struct {
	env *Env
	g   *globalOptions
	fleetOptions

	selector []string
	since    string
	severity string
}

func newSELCmd(env *Env, g *globalOptions) *cobra.Command {
	o := &selOptions{env: env, g: g}
	cmd := &cobra.Command{
		Use:   "sel SELECTOR...",
		Short: "Read the System Event Log (kernel panics, hardware faults), by host name",
		Long: `Read and decode the System Event Log of the selected hosts, over each
host's protocol (IPMI: the SEL itself, decoded like 'ipmitool sel elist';
Redfish: the vendor's event log, never its audit, maintenance or lifecycle
log).

Columns: host, time (local; "pre-init" when the BMC logged the event
before its clock was set), record id, sensor type, sensor (name or
number), event, direction, severity and a note. The note says KERNEL PANIC
for the OS Critical Stop event Linux logs when it panics (IPMI sensor type
0x20), with the panic message when the kernel wrote it, and CRITICAL for
other critical events; in a terminal these rows are also coloured (unless
NO_COLOR is set).

Entries are sorted by time within each host; entries without a time of
their own (Linux's panic text records) stay right after the entry they
follow. Hosts come in inventory order. --since keeps entries newer than a
duration or time (entries of unknown time are left out), --severity keeps
entries at or above a level.

'rmm sel clear' empties the log; see rmm sel clear --help.`,
		Example: `  rmm sel db1
  rmm sel @db --severity critical --since 24h
  rmm sel all -o json | jq '.[] | select(any(.entries[]; .kernel_panic)) | .host'
  rmm sel clear db1 --reason "INC-4312 reviewed"`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usageErrorf("rmm sel needs a host selector, e.g. 'rmm sel db1'\nrun 'rmm sel --help' for usage")
			}
			return nil
		},
		ValidArgsFunction: completeSelector(env, g),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.selector = args
			return selRun(cmd.Context(), o)
		},
	}
	o.fleetOptions.bind(cmd, FormatTable, FormatJSON, FormatCSV)
	cmd.Flags().StringVar(&o.since, "since", "", "only entries newer than a duration (24h, 7d) or a time (2026-11-30T02:00:00Z)")
	cmd.Flags().StringVar(&o.severity, "severity", "", "only entries at or above this severity: info, warning or critical")
	_ = cmd.RegisterFlagCompletionFunc("severity", cobra.FixedCompletions([]string{"info", "warning", "critical"}, cobra.ShellCompDirectiveNoFileComp))
	cmd.AddCommand(newSELClearCmd(env, g))
	return cmd
}

// selHost is one host's log in rmm sel -o json.
type selHost struct {
	Host     string     `json:"host"`
	BMC      string     `json:"bmc"`
	Protocol string     `json:"protocol,omitempty"`
	Entries  []selEntry `json:"entries"`
	// Total is the number of entries in the log before --since and
	// --severity.
	Total int    `json:"total"`
	Error string `json:"error,omitempty"`
	Hint  string `json:"hint,omitempty"`
}

// selEntry is one decoded entry in JSON. It is bmc.SELEntry with the time
// made honest (absent when unknown, "pre-init" said in words) and the
// kernel-panic flag computed, so jq needs no IPMI knowledge.
type selEntry struct {
	ID             string       `json:"id"`
	Time           *time.Time   `json:"time,omitempty"`
	TimeNote       string       `json:"time_note,omitempty"`
	SensorType     string       `json:"sensor_type,omitempty"`
	SensorTypeCode uint8        `json:"sensor_type_code,omitempty"`
	SensorNumber   uint8        `json:"sensor_number,omitempty"`
	Sensor         string       `json:"sensor,omitempty"`
	Event          string       `json:"event,omitempty"`
	Direction      string       `json:"direction,omitempty"`
	Severity       bmc.Severity `json:"severity"`
	Message        string       `json:"message,omitempty"`
	KernelPanic    bool         `json:"kernel_panic,omitempty"`
	Source         string       `json:"source,omitempty"`
	Raw            string       `json:"raw,omitempty"`

	// sortTime is the entry's time, or for an entry without one the time
	// of the entry before it in the log.
	sortTime time.Time
	// systemEvent: an IPMI system event record, which always names a
	// sensor number.
	systemEvent bool
}

func selRun(ctx context.Context, o *selOptions) error {
	if err := o.fleetOptions.check(FormatTable, FormatJSON, FormatCSV); err != nil {
		return err
	}
	minSev := bmc.Severity("")
	if o.severity != "" {
		minSev = bmc.Severity(strings.ToLower(o.severity))
		if minSev.Rank() < 0 {
			return usageErrorf("--severity %q: use info, warning or critical", o.severity)
		}
	}
	var since time.Time
	if o.since != "" {
		t, err := parseSince(o.since, o.env.now())
		if err != nil {
			return err
		}
		since = t
	}
	f, hosts, err := openFleet(o.env, o.g, o.selector)
	if err != nil {
		return err
	}
	rs := runFleet(ctx, o.env, hosts, o.fleetOptions.reading(), "sel", func(ctx context.Context, h *inventory.Host) (selHost, error) {
		r := selHost{Host: h.Name, BMC: h.Addr.String(), Entries: []selEntry{}}
		var raw []bmc.SELEntry
		err := f.withConn(ctx, h, func(c *bmc.Conn) error {
			r.Protocol = string(c.Protocol())
			var err error
			raw, err = c.SEL(ctx)
			return err
		})
		r.Total = len(raw)
		for _, e := range sortSEL(raw) {
			if minSev != "" && e.Severity.Rank() < minSev.Rank() {
				continue
			}
			if !since.IsZero() && (e.sortTime.IsZero() || e.sortTime.Before(since)) {
				continue
			}
			r.Entries = append(r.Entries, e)
		}
		r.Error, r.Hint = errString(err), bmc.Hint(err)
		return r, err
	})

	results := make([]selHost, len(rs))
	failed, shown, panics := 0, 0, 0
	for i, r := range rs {
		results[i] = r.Value
		if results[i].Host == "" { // never started
			results[i] = selHost{Host: hosts[i].Name, BMC: hosts[i].Addr.String(), Entries: []selEntry{}, Error: errString(r.Err)}
		}
		if r.Err != nil {
			failed++
		}
		shown += len(results[i].Entries)
		for _, e := range results[i].Entries {
			if e.KernelPanic {
				panics++
			}
		}
	}
	loc := displayLocation(o.env)
	if err := writeSEL(o.env.IO, o.output, results, loc); err != nil {
		return err
	}
	reportErrors(o.env, rs)
	if shown == 0 && failed < len(results) {
		what := "the SEL is empty"
		if minSev != "" || !since.IsZero() {
			what = "no SEL entries match --since/--severity"
		}
		fmt.Fprintf(o.env.IO.ErrOut, "%s\n", what)
	}
	if panics > 0 && o.output == FormatTable {
		noun := "entries"
		if panics == 1 {
			noun = "entry"
		}
		fmt.Fprintf(o.env.IO.ErrOut, "%d kernel panic %s (OS Critical Stop) shown\n", panics, noun)
	}
	code := summarize(o.env, len(rs), failed, "sel")
	if ctx.Err() != nil {
		fmt.Fprintf(o.env.IO.ErrOut, "rmm: interrupted: sessions closed\n")
		return silentExit(ExitInterrupted)
	}
	return silentExit(code)
}

// displayLocation is the time zone for human-readable times: $TZ when it
// names one (read through Env so tests can pin it), else the system's.
func displayLocation(e *Env) *time.Location {
	if tz := e.getenv("TZ"); tz != "" {
		if l, err := time.LoadLocation(strings.TrimPrefix(tz, ":")); err == nil {
			return l
		}
	}
	return time.Local
}

// sortSEL converts entries and sorts them by time, oldest first. An entry
// without a time (a pre-init stamp, or a record type without one, like
// Linux's panic text) sorts with the entry before it in the log, so the
// panic text stays under its panic and a BMC's pre-init boot events stay
// where the BMC logged them.
func sortSEL(raw []bmc.SELEntry) []selEntry {
	out := make([]selEntry, 0, len(raw))
	var last time.Time
	for _, e := range raw {
		s := selEntry{
			ID: e.ID, SensorType: e.SensorType, SensorTypeCode: e.SensorTypeCode, SensorNumber: e.SensorNumber,
			Sensor: e.Sensor, Event: e.Event, Direction: e.Direction, Severity: e.Severity, Message: e.Message,
			KernelPanic: e.IsKernelPanic(), Source: e.Source, Raw: e.Raw,
		}
		if s.Severity == "" {
			s.Severity = bmc.SeverityInfo
		}
		typ, isIPMI := ipmiRecordType(e)
		s.systemEvent = isIPMI && typ < 0xc0
		switch {
		case !e.Time.IsZero():
			t := e.Time
			s.Time = &t
			last = t
		case isIPMI && typ < 0xe0:
			// A time-stamped record type whose stamp counts from the
			// BMC's start: ipmitool's "Pre-Init".
			s.TimeNote = "pre-init"
		}
		s.sortTime = last
		out = append(out, s)
	}
	slices.SortStableFunc(out, func(a, b selEntry) int { return a.sortTime.Compare(b.sortTime) })
	return out
}

// ipmiRecordType is the IPMI SEL record type (byte 2 of the record), for
// entries read over IPMI.
func ipmiRecordType(e bmc.SELEntry) (uint8, bool) {
	if e.Source != "ipmi" || len(e.Raw) < 6 {
		return 0, false
	}
	v, err := strconv.ParseUint(e.Raw[4:6], 16, 8)
	if err != nil {
		return 0, false
	}
	return uint8(v), true
}

// selColumns are the table and CSV columns.
var selColumns = []string{"host", "time", "id", "type", "sensor", "event", "direction", "severity", "note"}

func writeSEL(s *IOStreams, format string, hosts []selHost, loc *time.Location) error {
	switch format {
	case FormatJSON:
		return writeJSON(s.Out, hosts)
	case FormatCSV:
		header := []string{"host", "time", "id", "sensor_type", "sensor_type_code", "sensor_number", "sensor", "event", "direction", "severity", "kernel_panic", "message"}
		var rows [][]string
		for _, h := range hosts {
			for _, e := range h.Entries {
				t := e.TimeNote
				if e.Time != nil {
					t = e.Time.Format(time.RFC3339)
				}
				rows = append(rows, []string{h.Host, t, e.ID, e.SensorType, fmt.Sprintf("0x%02x", e.SensorTypeCode),
					strconv.Itoa(int(e.SensorNumber)), e.Sensor, e.Event, e.Direction, string(e.Severity),
					strconv.FormatBool(e.KernelPanic), e.Message})
			}
		}
		return writeCSV(s.Out, header, rows)
	}
	var rows [][]string
	var marks []bmc.Severity // per row, for colour
	var panicRow []bool
	for _, h := range hosts {
		for _, e := range h.Entries {
			rows = append(rows, selTableRow(h.Host, e, loc))
			marks = append(marks, e.Severity)
			panicRow = append(panicRow, e.KernelPanic)
		}
	}
	if len(rows) == 0 {
		return nil
	}
	if !s.Color || !s.OutTTY {
		return writeTable(s.Out, selColumns, rows)
	}
	// Colour is added to whole lines after the table is laid out, so the
	// escape codes cannot upset column widths; the NOTE column carries the
	// same information in plain text for NO_COLOR and pipes.
	var buf strings.Builder
	if err := writeTable(&buf, selColumns, rows); err != nil {
		return err
	}
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	for i, line := range lines {
		code := ""
		if i > 0 && i-1 < len(rows) {
			switch {
			case panicRow[i-1]:
				code = "\x1b[1;31m" // bold red
			case marks[i-1] == bmc.SeverityCritical:
				code = "\x1b[31m"
			case marks[i-1] == bmc.SeverityWarning:
				code = "\x1b[33m"
			}
		}
		if code != "" {
			line = code + line + "\x1b[0m"
		}
		if _, err := io.WriteString(s.Out, line+"\n"); err != nil {
			return err
		}
	}
	return nil
}

// selTableRow renders one entry for the table.
func selTableRow(host string, e selEntry, loc *time.Location) []string {
	when := e.TimeNote
	if e.Time != nil {
		when = e.Time.In(loc).Format("2006-01-02 15:04:05")
	}
	sensor := e.Sensor
	if sensor == "" && (e.SensorNumber != 0 || e.systemEvent) {
		sensor = fmt.Sprintf("#0x%02x", e.SensorNumber)
	}
	event := e.Event
	note := ""
	switch {
	case e.KernelPanic:
		note = "KERNEL PANIC"
		if text, ok := strings.CutPrefix(e.Message, "kernel panic: "); ok {
			note += ": " + text
		} else if event == "" {
			event = e.Message
		}
	case e.Message != "" && event == "":
		event = e.Message
	case e.Message != "":
		event += ": " + e.Message
	}
	if note == "" && e.Severity == bmc.SeverityCritical {
		note = "CRITICAL"
	}
	return []string{host, when, e.ID, cell(e.SensorType), cell(sensor), cell(event), e.Direction, string(e.Severity), cell(note)}
}

// cell keeps a table cell on one line: BMC messages may carry newlines
// and tabs, and a terminal must not receive control bytes from a BMC.
func cell(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, strings.TrimSpace(s))
}

// selClearOptions holds rmm sel clear's flags.
type selClearOptions struct {
	env *Env
	g   *globalOptions
	fleetOptions

	selector []string
	yes      bool
	dryRun   bool
	reason   string
}

func newSELClearCmd(env *Env, g *globalOptions) *cobra.Command {
	o := &selClearOptions{env: env, g: g}
	cmd := &cobra.Command{
		Use:   "clear SELECTOR...",
		Short: "Empty the System Event Log, with confirmation and an audit line",
		Long: `Empty the System Event Log of the selected hosts (IPMI Clear SEL; Redfish
ClearLog on the same log 'rmm sel' reads, never an audit or lifecycle
log). The SEL is evidence: read it first ('rmm sel HOST -o json > file').

Clearing is destructive, so it asks like 'rmm power off': on a terminal it
names every host and BMC IP (more than 5 hosts: type the count); without a
terminal it refuses unless --yes. When the inventory records a host's
GUID, UUID or serial, rmm checks it first and refuses on a mismatch.

Each host gets one audit journal line (action "sel clear") with the number
of entries before and after (a BMC usually logs one "log cleared" event
right away); see rmm journal.`,
		Example: `  rmm sel clear db1 --reason "INC-4312: panic reviewed"
  rmm sel clear @db --yes --reason "quarterly SEL rotation"
  rmm sel clear 'db[1-3]' --dry-run`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usageErrorf("rmm sel clear needs a host selector, e.g. 'rmm sel clear db1'\nrun 'rmm sel clear --help' for usage")
			}
			return nil
		},
		ValidArgsFunction: completeSelector(env, g),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.selector = args
			return selClearRun(cmd.Context(), o)
		},
	}
	o.fleetOptions.bind(cmd, FormatTable, FormatJSON, FormatCSV)
	cmd.Flags().BoolVarP(&o.yes, "yes", "y", false, "do not ask for confirmation (for scripts)")
	cmd.Flags().BoolVar(&o.dryRun, "dry-run", false, "show host, BMC IP, protocols, credentials source and action, then stop")
	cmd.Flags().StringVar(&o.reason, "reason", "", "why, for the audit journal (e.g. an incident number)")
	return cmd
}

const selClearAction = "sel clear"

func selClearRun(ctx context.Context, o *selClearOptions) error {
	if err := o.fleetOptions.check(FormatTable, FormatJSON, FormatCSV); err != nil {
		return err
	}
	f, hosts, err := openFleet(o.env, o.g, o.selector)
	if err != nil {
		return err
	}
	if o.dryRun {
		return dryRun(o.env, f, hosts, selClearAction)
	}
	if err := confirm(o.env, o.yes, "clear the SEL on", hosts); err != nil {
		return err
	}
	sc := &stateChange{env: o.env, fleet: f, opts: o.fleetOptions, name: selClearAction, label: selClearAction, reason: o.reason,
		do: func(ctx context.Context, c *bmc.Conn, r *actionResult) (bool, error) {
			before, err := c.SEL(ctx)
			if err != nil {
				return false, err
			}
			r.Before = strconv.Itoa(len(before))
			if err := c.ClearSEL(ctx); err != nil {
				return !errors.Is(err, bmc.ErrNotSent), err
			}
			after, err := c.SEL(ctx)
			if err != nil {
				return true, fmt.Errorf("the clear request was accepted, but reading the SEL back failed: %w", err)
			}
			r.After = strconv.Itoa(len(after))
			return true, nil
		}}
	return sc.run(ctx, hosts)
}
