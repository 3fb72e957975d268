package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/rmm-project/rmm/bmc"
	"github.com/rmm-project/rmm/healthstate"
	"github.com/rmm-project/rmm/inventory"
)

func init() { register(newHealthCmd) }

// FormatPrometheus is the Prometheus text exposition format, for
// node_exporter's textfile collector.
const FormatPrometheus = "prometheus"

// healthOptions holds rmm health's flags and dependencies.
type healthOptions struct {
	env *Env
	g   *globalOptions
	fleetOptions

	selector   []string
	statePath  string
	saveState  bool
	selSince   time.Duration
	outputFile string
	problems   bool
}

func newHealthCmd(env *Env, g *globalOptions) *cobra.Command {
	o := &healthOptions{env: env, g: g}
	cmd := &cobra.Command{
		Use:   "health [SELECTOR...]",
		Short: "Check BMC health for cron, Nagios/Icinga and Prometheus",
		Long: `Check each selected host (default all) through its BMC and report a state per
check and per host, in the Nagios plugin convention:

  reachable  the BMC answers                       CRITICAL when it does not
  auth       rmm can log in                        CRITICAL when refused
  tls        the Redfish certificate is the pinned CRITICAL when it changed
             one
  identity   the machine is the one the inventory  CRITICAL on a mismatch (the
             records (expect: guid/uuid/serial)    other checks are then skipped)
  power      power is what expect: power says      CRITICAL when not (WARNING
                                                   while it is changing)
  sel        critical SEL events since the         CRITICAL when there are new ones
             previous run (kernel panics, PSU and
             memory failures)
  sensors    temperatures, fans, voltages, PSUs    WARNING or CRITICAL as the BMC
                                                   rates them
  rollup     the BMC's own summary health          WARNING or CRITICAL, with the
                                                   BMC's reason when it gives one

A check that cannot be done (the SEL cannot be read, say) is UNKNOWN. A
host's state is its worst check, the exit code the worst host's, ranked
CRITICAL > WARNING > UNKNOWN > OK: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.
Usage errors, an unreadable inventory and an interrupted run are UNKNOWN
(3), never CRITICAL.

New SEL events are found by remembering, per host and BMC address, the
newest record seen, in a state file (--state, default
$XDG_STATE_HOME/rmm/health-state.json) written atomically under a lock. A
panic is reported on the run that first sees it, not again; on a host's
first run (or after its BMC was replaced) only events from the last
--sel-since count as new. Give a cron job its own --state so a person
running rmm health by hand does not mark its events seen, or use
--save-state=false.

Output (-o):
  table       the first line is a Nagios status line (what Nagios and Icinga
              show and notify with), then one row per host
  json        {"status", "summary", "hosts": [...]}, every check and reading
  prometheus  text format for node_exporter's textfile collector; see
              docs/monitoring.md for metric names and alert rules

--output-file writes the output to a file atomically (a temporary file
renamed over it), so the textfile collector never reads half a file.`,
		Example: `  rmm health db1                      # one host, as a Nagios/Icinga check
  rmm health @db -o json
  rmm health all -o prometheus --output-file /var/lib/prometheus/node-exporter/rmm.prom --state /var/lib/rmm/health-cron.json
  rmm health all --problems           # only hosts that are not OK`,
		Args:              cobra.ArbitraryArgs,
		ValidArgsFunction: completeSelector(env, g),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.selector = args
			return healthRun(cmd.Context(), o)
		},
	}
	o.fleetOptions.bind(cmd, FormatTable, FormatJSON, FormatPrometheus)
	cmd.Flags().StringVar(&o.statePath, "state", "", "state file remembering the SEL records seen (default $RMM_HEALTH_STATE, else $XDG_STATE_HOME/rmm/health-state.json)")
	cmd.Flags().BoolVar(&o.saveState, "save-state", true, "mark the SEL records read as seen (false: look without changing the state)")
	cmd.Flags().DurationVar(&o.selSince, "sel-since", 24*time.Hour, "on a host's first run, critical SEL events older than this are taken as already known (0: none are)")
	cmd.Flags().StringVar(&o.outputFile, "output-file", "", "write the output to this file atomically instead of stdout")
	cmd.Flags().BoolVar(&o.problems, "problems", false, "table: list only hosts that are not OK")
	// Nagios reads 2 as CRITICAL: a flag mistake must not page anyone.
	cmd.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		err = fmt.Errorf("%w\nrun '%s --help' for usage", err, c.CommandPath())
		fmt.Fprintf(env.IO.Out, "RMM UNKNOWN - %s\n", statusText(err))
		return &ExitError{Code: NagiosUnknown, Err: err}
	})
	return cmd
}

// nagiosState is a check's, a host's or a run's state. Its value is the
// Nagios plugin exit code.
type nagiosState int

// States.
const (
	stateOK       nagiosState = NagiosOK
	stateWarning  nagiosState = NagiosWarning
	stateCritical nagiosState = NagiosCritical
	stateUnknown  nagiosState = NagiosUnknown
)

var stateNames = [...]string{"OK", "WARNING", "CRITICAL", "UNKNOWN"}

func (s nagiosState) String() string {
	if s < 0 || int(s) >= len(stateNames) {
		return "UNKNOWN"
	}
	return stateNames[s]
}

// MarshalText makes JSON say "CRITICAL", not 2.
func (s nagiosState) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText reads what MarshalText writes (tests read JSON back).
func (s *nagiosState) UnmarshalText(b []byte) error {
	for i, n := range stateNames {
		if n == string(b) {
			*s = nagiosState(i)
			return nil
		}
	}
	return fmt.Errorf("unknown state %q", b)
}

// rank orders states for "worst": a problem found outranks a check that
// could not be made (monitoring-plugins' max_state_alt).
func (s nagiosState) rank() int {
	switch s {
	case stateCritical:
		return 3
	case stateWarning:
		return 2
	case stateUnknown:
		return 1
	}
	return 0
}

func worse(a, b nagiosState) nagiosState {
	if b.rank() > a.rank() {
		return b
	}
	return a
}

func stateOf(sev bmc.Severity) nagiosState {
	switch sev {
	case bmc.SeverityCritical:
		return stateCritical
	case bmc.SeverityWarning:
		return stateWarning
	}
	return stateOK
}

// Checks, in the order they are reported. They are the values of the check
// label of rmm_bmc_health_status.
const (
	checkReachable = "reachable"
	checkAuth      = "auth"
	checkTLS       = "tls"
	checkIdentity  = "identity"
	checkPower     = "power"
	checkSEL       = "sel"
	checkSensors   = "sensors"
	checkRollup    = "rollup"
)

// healthCheck is one check's verdict.
type healthCheck struct {
	Check  string      `json:"check"`
	Status nagiosState `json:"status"`
	Detail string      `json:"detail,omitempty"`
}

// hostHealth is one host's health: the checks and what was read. The same
// value feeds rmm health's outputs and the exporter's probe.
type hostHealth struct {
	Host     string        `json:"host"`
	BMC      string        `json:"bmc"`
	Status   nagiosState   `json:"status"`
	Up       bool          `json:"up"`
	Protocol string        `json:"protocol,omitempty"`
	Checks   []healthCheck `json:"checks"`
	Power    string        `json:"power,omitempty"`
	// ExpectPower is the inventory's expect: power.
	ExpectPower string           `json:"expect_power,omitempty"`
	Identity    *bmc.Identity    `json:"identity,omitempty"`
	SEL         *selReport       `json:"sel,omitempty"`
	Rollups     []bmc.HealthItem `json:"rollups,omitempty"`
	Sensors     []bmc.HealthItem `json:"sensors,omitempty"`
	Error       string           `json:"error,omitempty"`
	Hint        string           `json:"hint,omitempty"`
	DurationMS  int64            `json:"duration_ms"`

	// sel is the log as read (nil with selErr when it could not be).
	sel    []bmc.SELEntry
	selErr error
}

// selReport summarises the SEL.
type selReport struct {
	// Read is false when the SEL could not be read this time; only the
	// running total is then known.
	Read     bool `json:"read"`
	Entries  int  `json:"entries"`
	Critical int  `json:"critical"`
	// LatestCritical is the newest critical record's time stamp.
	LatestCritical *time.Time `json:"latest_critical,omitempty"`
	// NewCritical (rmm health only) are the critical records not seen by
	// the previous run; NewCriticalTotal counts all reported so far.
	NewCritical      []bmc.SELEntry `json:"new_critical,omitempty"`
	NewCriticalTotal uint64         `json:"new_critical_total"`
}

func (r *hostHealth) add(check string, s nagiosState, detail string) {
	r.Checks = append(r.Checks, healthCheck{Check: check, Status: s, Detail: oneLine(detail)})
}

// settle sets the host's state from its checks.
func (r *hostHealth) settle() {
	r.Status = stateOK
	for _, c := range r.Checks {
		r.Status = worse(r.Status, c.Status)
	}
	if len(r.Checks) == 0 {
		r.Status = stateUnknown
	}
}

// checkHost runs every check but "sel" on one host: rmm health adds that
// one from its state file, the exporter from the log alone.
func checkHost(ctx context.Context, f *fleet, h *inventory.Host) hostHealth {
	start := time.Now()
	r := hostHealth{Host: h.Name, BMC: h.Addr.String(), ExpectPower: h.Expect.Power}
	r.check(ctx, f, h)
	r.settle()
	r.DurationMS = time.Since(start).Milliseconds()
	return r
}

// check opens a session, reads what the checks need and closes the
// session on every path.
func (r *hostHealth) check(ctx context.Context, f *fleet, h *inventory.Host) {
	conn, err := f.open(ctx, h)
	if err != nil {
		r.sessionFailed(err)
		return
	}
	defer conn.Close(ctx)
	r.Up, r.Protocol = true, string(conn.Protocol())
	r.add(checkReachable, stateOK, "")
	r.add(checkAuth, stateOK, "")
	if conn.Protocol() == bmc.ProtocolRedfish {
		r.add(checkTLS, stateOK, "")
	}

	// Identity first: readings from another machine must not be reported
	// (or remembered) as this host's.
	id, err := conn.Identity(ctx)
	if err == nil {
		r.Identity = &id
	}
	switch want := conn.Target.Expect; {
	case want.IsZero():
		r.add(checkIdentity, stateOK, "not recorded in the inventory")
	case err != nil:
		r.add(checkIdentity, stateUnknown, "cannot read: "+shortErr(err))
	default:
		if merr := want.Mismatch(id); merr != nil {
			r.add(checkIdentity, stateCritical, merr.Error()+"; other checks skipped")
			return
		}
		r.add(checkIdentity, stateOK, "")
	}

	st, err := conn.PowerState(ctx)
	switch {
	case err != nil:
		r.add(checkPower, stateUnknown, "cannot read: "+shortErr(err))
	default:
		r.Power = string(st)
		r.add(powerVerdict(st, h.Expect.Power))
	}

	// The SEL before the sensors: a kernel panic is what on-call is woken
	// for, so it gets the time budget first.
	r.sel, r.selErr = conn.SEL(ctx)
	if r.selErr == nil {
		r.SEL = summariseSEL(r.sel)
	}

	hl, err := conn.Health(ctx)
	if err != nil {
		r.add(checkSensors, stateUnknown, "cannot read: "+shortErr(err))
		return
	}
	r.Rollups, r.Sensors = hl.Rollups, hl.Sensors
	r.add(sensorsVerdict(hl.Sensors))
	if len(hl.Rollups) > 0 {
		r.add(rollupVerdict(hl.Rollups))
	}
}

// sessionFailed turns a failed Open into checks: which one failed says
// whether on-call should look at the network, the credentials or a
// certificate.
func (r *hostHealth) sessionFailed(err error) {
	r.Error, r.Hint = oneLine(errString(err)), bmc.Hint(err)
	switch out := bmc.Classify(err); {
	case errors.Is(err, bmc.ErrTLSPin):
		r.add(checkReachable, stateOK, "")
		r.add(checkTLS, stateCritical, "the Redfish certificate changed: it does not match the pinned fingerprint")
	case errors.Is(err, bmc.ErrAuth):
		r.add(checkReachable, stateOK, "")
		r.add(checkAuth, stateCritical, "authentication failed")
	case out == bmc.OutcomeCancelled:
		r.add(checkReachable, stateUnknown, "interrupted")
	case out == bmc.OutcomeTimeout || out == bmc.OutcomeUnreachable:
		r.add(checkReachable, stateCritical, "bmc unreachable ("+string(out)+")")
	default:
		// Something answered, but no session: a busy BMC, a cipher suite
		// it lacks, credentials rmm could not resolve.
		r.add(checkReachable, stateOK, "")
		r.add(checkAuth, stateUnknown, "no session: "+shortErr(err))
	}
}

func powerVerdict(st bmc.PowerState, want string) (string, nagiosState, string) {
	switch {
	case want == "" || string(st) == want:
		return checkPower, stateOK, string(st)
	case st == bmc.PowerPoweringOn || st == bmc.PowerPoweringOf:
		return checkPower, stateWarning, fmt.Sprintf("%s, inventory expects %s", st, want)
	}
	return checkPower, stateCritical, fmt.Sprintf("%s, inventory expects %s", st, want)
}

func sensorsVerdict(items []bmc.HealthItem) (string, nagiosState, string) {
	s := stateOK
	var bad []string
	for _, it := range items {
		if it.Severity.Rank() <= 0 {
			continue
		}
		s = worse(s, stateOf(it.Severity))
		d := it.Name
		if it.Reading != nil {
			d += fmt.Sprintf(" %g %s", *it.Reading, it.Unit)
		}
		d += " " + string(it.Severity)
		if it.Detail != "" {
			d += " (" + it.Detail + ")"
		}
		bad = append(bad, strings.TrimSpace(d))
	}
	if len(bad) == 0 {
		return checkSensors, stateOK, fmt.Sprintf("%d sensors ok", len(items))
	}
	return checkSensors, s, strings.Join(bad, ", ")
}

func rollupVerdict(items []bmc.HealthItem) (string, nagiosState, string) {
	s := stateOK
	var bad []string
	for _, it := range items {
		if it.Severity.Rank() <= 0 {
			continue
		}
		s = worse(s, stateOf(it.Severity))
		d := it.Name + " " + string(it.Severity)
		if it.Detail != "" {
			d += " (" + it.Detail + ")"
		}
		bad = append(bad, d)
	}
	return checkRollup, s, strings.Join(bad, ", ")
}

func summariseSEL(es []bmc.SELEntry) *selReport {
	rep := &selReport{Read: true, Entries: len(es)}
	for _, e := range healthstate.Critical(es) {
		rep.Critical++
		if !e.Time.IsZero() && (rep.LatestCritical == nil || e.Time.After(*rep.LatestCritical)) {
			t := e.Time
			rep.LatestCritical = &t
		}
	}
	return rep
}

// selDetail describes new critical records: how many, and the first.
func selDetail(es []bmc.SELEntry) string {
	noun := "records"
	if len(es) == 1 {
		noun = "record"
	}
	return fmt.Sprintf("%d new critical SEL %s, the first: %s", len(es), noun, describeSEL(es[0]))
}

func describeSEL(e bmc.SELEntry) string {
	d := e.SensorType
	if e.Sensor != "" && e.Sensor != e.SensorType {
		d += " (" + e.Sensor + ")"
	}
	text := e.Message
	if text == "" {
		text = e.Event
	}
	switch {
	case d == "":
		d = text
	case text != "":
		d += ": " + text
	}
	if !e.Time.IsZero() {
		d += " at " + e.Time.UTC().Format(time.RFC3339)
	}
	return d
}

// shortErr is an error without the "host (bmc ip): " prefix (the row
// already says which host), on one line.
func shortErr(err error) string {
	var he *bmc.HostError
	if errors.As(err, &he) {
		s := he.Err.Error()
		if he.Op != "" && he.Op != "open" {
			s = he.Op + ": " + s
		}
		return oneLine(s)
	}
	return oneLine(err.Error())
}

// oneLine folds a joined, multi-line error into one line for tables, JSON
// fields and Nagios status lines.
func oneLine(s string) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(s, "\n", "; ")), " ")
}

// healthReport is rmm health's JSON document.
type healthReport struct {
	Status  nagiosState   `json:"status"`
	Summary healthSummary `json:"summary"`
	Hosts   []hostHealth  `json:"hosts"`
	// Error is set when the run itself failed (UNKNOWN).
	Error string `json:"error,omitempty"`
}

type healthSummary struct {
	Hosts    int `json:"hosts"`
	OK       int `json:"ok"`
	Warning  int `json:"warning"`
	Critical int `json:"critical"`
	Unknown  int `json:"unknown"`
}

func (s *healthSummary) count(st nagiosState) {
	s.Hosts++
	switch st {
	case stateOK:
		s.OK++
	case stateWarning:
		s.Warning++
	case stateCritical:
		s.Critical++
	default:
		s.Unknown++
	}
}

func healthRun(ctx context.Context, o *healthOptions) error {
	started := o.env.now()
	rep, err := healthCollect(ctx, o)
	if err != nil {
		// Usage errors (2 elsewhere) and inventory errors are UNKNOWN here.
		var ee *ExitError
		if !errors.As(err, &ee) || ee.Err == nil {
			ee = &ExitError{Err: err}
		}
		ee = &ExitError{Code: NagiosUnknown, Err: ee.Err, Silent: ee.Silent}
		if o.output != FormatJSON && o.output != FormatPrometheus {
			fmt.Fprintf(o.env.IO.Out, "RMM UNKNOWN - %s\n", statusText(ee.Err))
		}
		return ee
	}
	if err := writeHealth(o, rep, started); err != nil {
		fmt.Fprintf(o.env.IO.ErrOut, "rmm: %v\n", err)
		return silentExit(NagiosUnknown)
	}
	if ctx.Err() != nil {
		fmt.Fprintf(o.env.IO.ErrOut, "rmm: interrupted: the report is incomplete; sessions closed\n")
		return silentExit(NagiosUnknown)
	}
	return silentExit(int(rep.Status))
}

// healthCollect checks the hosts and applies (and saves) the SEL state.
func healthCollect(ctx context.Context, o *healthOptions) (*healthReport, error) {
	if err := o.fleetOptions.check(FormatTable, FormatJSON, FormatPrometheus); err != nil {
		return nil, err
	}
	if o.selSince < 0 {
		return nil, usageErrorf("--sel-since must not be negative, got %s", o.selSince)
	}
	sel := orAll(o.selector)
	f, hosts, err := openFleet(o.env, o.g, sel)
	if err != nil {
		return nil, err
	}
	statePath := o.statePath
	if statePath == "" {
		statePath = healthstate.DefaultPath(o.env.getenv)
	}
	state, err := healthstate.Load(statePath)
	if err != nil {
		fmt.Fprintf(o.env.IO.ErrOut, "warning: %v; starting afresh (critical SEL events since --sel-since are reported again)\n", err)
		state = &healthstate.File{}
	}

	rs := runFleet(ctx, o.env, hosts, o.fleetOptions.reading(), "health", func(ctx context.Context, h *inventory.Host) (hostHealth, error) {
		return checkHost(ctx, f, h), nil
	})
	now := o.env.now()
	rep := &healthReport{Hosts: make([]hostHealth, len(rs))}
	var updates []healthstate.Host
	for i, r := range rs {
		hh := r.Value
		if hh.Host == "" { // never started: interrupted
			hh = hostHealth{Host: hosts[i].Name, BMC: hosts[i].Addr.String(), Error: errString(r.Err)}
			hh.add(checkReachable, stateUnknown, "not checked: interrupted")
			hh.settle()
		}
		if u, ok := applySELState(&hh, state.Find(hh.Host, hh.BMC), now, o.selSince); ok {
			updates = append(updates, u)
		}
		rep.Hosts[i] = hh
		rep.Summary.count(hh.Status)
		rep.Status = worse(rep.Status, hh.Status)
	}
	if len(rep.Hosts) == 0 || ctx.Err() != nil {
		// An interrupted run is no verdict: the status line says UNKNOWN,
		// as the exit code does.
		rep.Status = stateUnknown
	}
	if o.saveState && len(updates) > 0 {
		err := healthstate.Update(statePath, func(sf *healthstate.File) {
			for _, u := range updates {
				sf.Put(u)
			}
			sf.Prune(func(host, addr string) bool {
				h, ok := f.inv.Host(host)
				return ok && h.Addr.String() == addr
			})
		})
		if err != nil {
			// Not fatal: the next run reports these events again, which is
			// noisy but misses nothing.
			fmt.Fprintf(o.env.IO.ErrOut, "warning: %v: new SEL events will be reported again next run\n", err)
		}
	}
	return rep, nil
}

// applySELState adds the "sel" check from the state and returns the host's
// new state entry (ok false when the SEL was not read: the old entry stays
// as it is). The counter of a host whose SEL could not be read is kept, so
// rmm_sel_critical_new_total never goes backwards.
func applySELState(hh *hostHealth, prev *healthstate.Host, now time.Time, since time.Duration) (healthstate.Host, bool) {
	if hh.SEL == nil || !hh.SEL.Read {
		if hh.selErr != nil {
			hh.addSorted(checkSEL, stateUnknown, "cannot read: "+shortErr(hh.selErr))
		}
		if prev != nil {
			hh.SEL = &selReport{NewCriticalTotal: prev.CriticalTotal}
		}
		hh.settle()
		return healthstate.Host{}, false
	}
	identity := ""
	if hh.Identity != nil {
		identity = healthstate.IdentityKey(*hh.Identity)
	}
	base := healthstate.Baseline{}
	if since > 0 {
		base.Since = now.Add(-since)
	}
	fresh, last := healthstate.NewEntries(prev, identity, hh.sel, base)
	crit := healthstate.Critical(fresh)
	u := healthstate.Host{Host: hh.Host, BMC: hh.BMC, BMCIdentity: identity, Last: last, Checked: now.UTC()}
	if prev != nil {
		u.CriticalTotal = prev.CriticalTotal
		if identity == "" {
			u.BMCIdentity = prev.BMCIdentity
		}
	}
	u.CriticalTotal += uint64(len(crit))
	hh.SEL.NewCritical, hh.SEL.NewCriticalTotal = crit, u.CriticalTotal
	if len(crit) > 0 {
		hh.addSorted(checkSEL, stateCritical, selDetail(crit))
	} else {
		hh.addSorted(checkSEL, stateOK, fmt.Sprintf("no new critical events (%d records)", hh.SEL.Entries))
	}
	hh.settle()
	return u, true
}

// checkOrder is the reporting order of checks.
var checkOrder = []string{checkReachable, checkAuth, checkTLS, checkIdentity, checkPower, checkSEL, checkSensors, checkRollup}

func checkIndex(c string) int {
	for i, n := range checkOrder {
		if n == c {
			return i
		}
	}
	return len(checkOrder)
}

// addSorted inserts a check in reporting order.
func (r *hostHealth) addSorted(check string, s nagiosState, detail string) {
	c := healthCheck{Check: check, Status: s, Detail: oneLine(detail)}
	i := len(r.Checks)
	for i > 0 && checkIndex(r.Checks[i-1].Check) > checkIndex(check) {
		i--
	}
	r.Checks = append(r.Checks[:i], append([]healthCheck{c}, r.Checks[i:]...)...)
}

// writeHealth prints the report in the chosen format, to stdout or
// atomically to --output-file.
func writeHealth(o *healthOptions, rep *healthReport, started time.Time) error {
	write := func(w io.Writer) error {
		switch o.output {
		case FormatJSON:
			return writeJSON(w, rep)
		case FormatPrometheus:
			return writeHealthMetrics(w, o.env, rep, started)
		default:
			return writeHealthTable(w, rep, o.problems)
		}
	}
	if o.outputFile == "" {
		return write(o.env.IO.Out)
	}
	return writeFileAtomic(o.env, o.outputFile, write)
}

// writeFileAtomic writes a file through the password scrubber into a
// temporary file in the same directory and renames it over path. The
// temporary name starts with a dot and does not end in .prom, so
// node_exporter's textfile collector never reads it.
func writeFileAtomic(env *Env, path string, write func(io.Writer) error) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("output file: %w", err)
	}
	defer os.Remove(tmp.Name())
	var w io.Writer = tmp
	var flush func() error
	if env.IO.Scrub != nil {
		sc := env.IO.Scrub.Wrap(tmp)
		w, flush = sc, sc.Flush
	}
	err = write(w)
	if err == nil && flush != nil {
		err = flush()
	}
	if err == nil {
		err = tmp.Chmod(0o644) // the textfile collector runs as another user
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		return fmt.Errorf("output file %s: %w", path, err)
	}
	return nil
}

// writeHealthTable prints the Nagios status line, then one row per host.
func writeHealthTable(w io.Writer, rep *healthReport, problemsOnly bool) error {
	if _, err := fmt.Fprintln(w, statusLine(rep)); err != nil {
		return err
	}
	var rows [][]string
	for _, h := range rep.Hosts {
		if problemsOnly && h.Status == stateOK {
			continue
		}
		power := h.Power
		if power != "" && h.ExpectPower != "" && power != h.ExpectPower {
			power += " (expected " + h.ExpectPower + ")"
		}
		rows = append(rows, []string{h.Host, h.BMC, h.Status.String(), power, problemsText(h)})
	}
	if len(rows) == 0 {
		return nil
	}
	return writeTable(w, []string{"host", "bmc", "status", "power", "problems"}, rows)
}

// problemsText lists the checks that are not OK: "check: detail; ...".
func problemsText(h hostHealth) string {
	var ps []string
	for _, c := range h.Checks {
		if c.Status == stateOK {
			continue
		}
		p := c.Check + " " + strings.ToLower(c.Status.String())
		if c.Detail != "" {
			p += ": " + c.Detail
		}
		ps = append(ps, p)
	}
	return strings.Join(ps, "; ")
}

// maxStatusHosts is how many problem hosts the status line names: Nagios
// notifications carry only this line, so it says who first.
const maxStatusHosts = 3

// statusLine is the Nagios plugin output's first line:
//
//	RMM CRITICAL - 2 critical, 1 warning, 0 unknown, 37 ok: db1 sel critical: ...; ... | critical=2;;;0;40 ...
//
// Problem hosts are named worst first (inventory order within a state),
// each with its worst check. The performance data after "|" counts hosts
// per state, for graphs.
func statusLine(rep *healthReport) string {
	s := rep.Summary
	var b strings.Builder
	fmt.Fprintf(&b, "RMM %s - ", rep.Status)
	if s.Hosts == 1 {
		h := rep.Hosts[0]
		b.WriteString(h.Host)
		if p := problemsText(h); p != "" {
			b.WriteString(": " + p)
		} else {
			b.WriteString(": all checks ok")
		}
	} else {
		fmt.Fprintf(&b, "%d critical, %d warning, %d unknown, %d ok", s.Critical, s.Warning, s.Unknown, s.OK)
		var named []string
		for _, st := range []nagiosState{stateCritical, stateWarning, stateUnknown} {
			for _, h := range rep.Hosts {
				if h.Status != st {
					continue
				}
				if len(named) == maxStatusHosts {
					break
				}
				named = append(named, h.Host+" "+worstCheck(h))
			}
		}
		if len(named) > 0 {
			b.WriteString(": " + strings.Join(named, "; "))
			if more := s.Critical + s.Warning + s.Unknown - len(named); more > 0 {
				fmt.Fprintf(&b, "; and %d more", more)
			}
		}
	}
	text := strings.ReplaceAll(b.String(), "|", "/") // "|" starts Nagios perfdata
	return fmt.Sprintf("%s | critical=%d;;;0;%d warning=%d;;;0;%d unknown=%d;;;0;%d ok=%d;;;0;%d",
		text, s.Critical, s.Hosts, s.Warning, s.Hosts, s.Unknown, s.Hosts, s.OK, s.Hosts)
}

// worstCheck is "check state: detail" of a host's worst check.
func worstCheck(h hostHealth) string {
	var w *healthCheck
	for i := range h.Checks {
		if w == nil || h.Checks[i].Status.rank() > w.Status.rank() {
			w = &h.Checks[i]
		}
	}
	if w == nil {
		return strings.ToLower(h.Status.String())
	}
	s := w.Check + " " + strings.ToLower(w.Status.String())
	if w.Detail != "" {
		s += ": " + w.Detail
	}
	return s
}

// statusText is an error's first line, for a status line.
func statusText(err error) string {
	line, _, _ := strings.Cut(err.Error(), "\n")
	return strings.ReplaceAll(line, "|", "/")
}
