package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/rmm-project/rmm/healthstate"
	"github.com/rmm-project/rmm/sim/machine"
)

// scenarioHosts is the fleet audit and health are judged on: one host per
// failure the commands must tell apart, and two healthy ones.
var scenarioHosts = []testHost{
	{name: "ok-ipmi", protocols: "[ipmi]", extra: "    expect: {power: on}"},
	{name: "ok-redfish", protocols: "[redfish]", vendor: "dell"},
	{name: "dead", protocols: "[ipmi]", scenarios: "[dead]"},
	{name: "slow", protocols: "[ipmi]", scenarios: "[slow]", delay: "20ms"},
	{name: "badpw", protocols: "[ipmi]", scenarios: "[wrong-credentials]"},
	{name: "panicked", protocols: "[ipmi]", scenarios: "[panicked]"},
	{name: "overheat", protocols: "[ipmi]", scenarios: "[overheat]"},
	{name: "replaced", protocols: "[ipmi]", scenarios: "[replaced]", extra: "    expect: {uuid: 0f0e0d0c-0b0a-0908-0706-050403020100}"},
	{name: "powered-off", protocols: "[ipmi]", extra: "    expect: {power: on}"},
	{name: "cert-changed", protocols: "[redfish]", vendor: "supermicro",
		extra: "    redfish: {fingerprint: 0000000000000000000000000000000000000000000000000000000000000000}"},
	// HPE's captured tree: AggregateHealthStatus says Storage is critical
	// while every sensor reads OK.
	{name: "rollup-only", protocols: "[redfish]", vendor: "hpe"},
}

// scenarioTimeout is --timeout for scenario runs: generous for a loaded
// machine, and what the dead host costs each run.
const scenarioTimeout = "4s"

func newScenarioFleet(t *testing.T) *testFleet {
	tf := newTestFleet(t, scenarioHosts...)
	tf.host("powered-off").Machine.SetPower(false)
	return tf
}

var (
	ipRe   = regexp.MustCompile(`\b127\.\d{1,3}\.\d{1,3}\.\d{1,3}\b`)
	timeRe = regexp.MustCompile(`\b\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z\b`)
	cellRe = regexp.MustCompile(`\s{2,}`)
)

// normalise makes a table deterministic for a golden file: each host's BMC
// address becomes 10.0.0.N (N its place in the fleet; the real ones depend
// on which loopback block the test drew), times become <time>, and the
// table is re-aligned with writeTable. Lines before the header (health's
// status line) are kept as they are, normalised.
func normalise(t *testing.T, tf *testFleet, out string) string {
	t.Helper()
	addrs := map[string]string{}
	for i, h := range tf.fleet.Hosts() {
		addrs[h.Spec.Addr.String()] = fmt.Sprintf("10.0.0.%d", i+1)
	}
	out = ipRe.ReplaceAllStringFunc(out, func(s string) string {
		if a, ok := addrs[s]; ok {
			return a
		}
		return s
	})
	out = timeRe.ReplaceAllString(out, "<time>")
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	hdr := 0
	for hdr < len(lines) && !strings.HasPrefix(lines[hdr], "HOST ") {
		hdr++
	}
	if hdr == len(lines) {
		return out
	}
	var b strings.Builder
	for _, l := range lines[:hdr] {
		b.WriteString(l + "\n")
	}
	header := cellRe.Split(lines[hdr], -1)
	var rows [][]string
	for _, l := range lines[hdr+1:] {
		cells := cellRe.Split(l, -1)
		for len(cells) < len(header) {
			cells = append(cells, "")
		}
		rows = append(rows, cells)
	}
	if err := writeTable(&b, header, rows); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// healthJSON runs rmm health -o json and decodes the report.
func (tf *testFleet) healthJSON(args ...string) (healthReport, result) {
	tf.t.Helper()
	r := tf.rmm(append([]string{"health", "-o", "json", "--timeout", scenarioTimeout}, args...)...)
	var rep healthReport
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		tf.t.Fatalf("health json: %v\n%s\n%s", err, r.stdout, r.stderr)
	}
	return rep, r
}

func hostOf(t *testing.T, rep healthReport, name string) hostHealth {
	t.Helper()
	for _, h := range rep.Hosts {
		if h.Host == name {
			return h
		}
	}
	t.Fatalf("no host %s in the report", name)
	return hostHealth{}
}

func checkOf(h hostHealth, name string) (healthCheck, bool) {
	for _, c := range h.Checks {
		if c.Check == name {
			return c, true
		}
	}
	return healthCheck{}, false
}

// Every scenario, on the first run: the right state per host and per
// check, exit CRITICAL, in table (golden), JSON and Prometheus form; then
// the second run no longer reports the panic.
func TestHealthScenarios(t *testing.T) {
	t.Parallel()
	tf := newScenarioFleet(t)
	// First runs in three formats, each with its own state file, so each
	// is a first run. One after the other: IPMI BMCs cancel each other's
	// SDR reservations when several clients walk the repository at once.
	formats := []string{FormatTable, FormatJSON, FormatPrometheus}
	runs := make([]result, len(formats))
	for i, f := range formats {
		runs[i] = tf.rmm("health", "-o", f, "--timeout", scenarioTimeout, "--state", filepath.Join(tf.dir, "state-"+f+".json"))
	}
	for i, r := range runs {
		if r.code != NagiosCritical {
			t.Errorf("-o %s: exit %d, want %d (CRITICAL)\n%s", formats[i], r.code, NagiosCritical, r.stderr)
		}
	}

	t.Run("table", func(t *testing.T) {
		checkGolden(t, "health_first_run.golden", []byte(normalise(t, tf, runs[0].stdout)))
		if !strings.HasPrefix(runs[0].stdout, "RMM CRITICAL - 8 critical, 0 warning, 0 unknown, 3 ok: ") {
			t.Errorf("status line: %q", strings.SplitN(runs[0].stdout, "\n", 2)[0])
		}
	})

	t.Run("json", func(t *testing.T) {
		var rep healthReport
		if err := json.Unmarshal([]byte(runs[1].stdout), &rep); err != nil {
			t.Fatal(err)
		}
		want := []struct {
			host   string
			status nagiosState
			check  string // the check that decides, "" for OK hosts
		}{
			{"ok-ipmi", stateOK, ""},
			{"ok-redfish", stateOK, ""},
			{"dead", stateCritical, checkReachable},
			{"slow", stateOK, ""},
			{"badpw", stateCritical, checkAuth},
			{"panicked", stateCritical, checkSEL},
			{"overheat", stateCritical, checkSensors},
			{"replaced", stateCritical, checkIdentity},
			{"powered-off", stateCritical, checkPower},
			{"cert-changed", stateCritical, checkTLS},
			{"rollup-only", stateCritical, checkRollup},
		}
		if rep.Status != stateCritical || rep.Summary != (healthSummary{Hosts: 11, OK: 3, Critical: 8}) {
			t.Errorf("status %s, summary %+v", rep.Status, rep.Summary)
		}
		for i, w := range want {
			h := rep.Hosts[i]
			if h.Host != w.host {
				t.Fatalf("row %d is %s, want %s (inventory order)", i, h.Host, w.host)
			}
			if h.Status != w.status {
				t.Errorf("%s: %s, want %s: %+v", w.host, h.Status, w.status, h.Checks)
			}
			for _, c := range h.Checks {
				bad := c.Status != stateOK
				if bad != (c.Check == w.check) {
					t.Errorf("%s: check %s is %s (%s); the deciding check should be %q", w.host, c.Check, c.Status, c.Detail, w.check)
				}
			}
		}
		if h := hostOf(t, rep, "panicked"); h.SEL == nil || len(h.SEL.NewCritical) != 4 || h.SEL.NewCriticalTotal != 4 ||
			!h.SEL.NewCritical[0].IsKernelPanic() {
			t.Errorf("panicked: sel %+v, want the OS Critical Stop and its 3 panic-string records", h.SEL)
		}
		if c, _ := checkOf(hostOf(t, rep, "rollup-only"), checkRollup); !strings.Contains(c.Detail, "Oem.Hpe.AggregateHealthStatus.Storage: Critical") {
			t.Errorf("rollup without its reason: %+v", c)
		}
		if c, _ := checkOf(hostOf(t, rep, "rollup-only"), checkSensors); c.Status != stateOK {
			t.Errorf("rollup-only: sensors %+v; the point is that every sensor is OK", c)
		}
		if h := hostOf(t, rep, "replaced"); len(h.Checks) != 3 || h.Power != "" || h.SEL != nil {
			t.Errorf("replaced: checks after the identity mismatch were run: %+v", h.Checks)
		}
		if h := hostOf(t, rep, "dead"); h.Up || h.Error == "" || h.Hint == "" {
			t.Errorf("dead: up %v, error %q, hint %q", h.Up, h.Error, h.Hint)
		}
	})

	t.Run("prometheus", func(t *testing.T) {
		mfs := parseMetrics(t, runs[2].stdout)
		want := []struct {
			name   string
			labels map[string]string
			value  float64
		}{
			{"rmm_bmc_up", map[string]string{"host": "dead"}, 0},
			{"rmm_bmc_up", map[string]string{"host": "ok-ipmi"}, 1},
			{"rmm_bmc_status", map[string]string{"host": "rollup-only"}, 2},
			{"rmm_bmc_status", map[string]string{"host": "slow"}, 0},
			{"rmm_bmc_health_status", map[string]string{"host": "panicked", "check": "sel"}, 2},
			{"rmm_bmc_health_status", map[string]string{"host": "cert-changed", "check": "tls"}, 2},
			{"rmm_bmc_health_status", map[string]string{"host": "powered-off", "check": "power"}, 2},
			{"rmm_bmc_power_on", map[string]string{"host": "powered-off"}, 0},
			{"rmm_sel_critical_new_total", map[string]string{"host": "panicked"}, 4},
			{"rmm_sel_critical_entries", map[string]string{"host": "panicked"}, 4},
			{"rmm_sensor_state", map[string]string{"host": "overheat", "sensor": machine.SensorCPUTemp, "kind": "temperature"}, 2},
			{"rmm_sensor_value", map[string]string{"host": "overheat", "sensor": machine.SensorCPUTemp}, machine.OverheatReading},
			{"rmm_health_hosts", map[string]string{"status": "CRITICAL"}, 8},
		}
		for _, w := range want {
			v, ok := metricValue(mfs, w.name, w.labels)
			if !ok || v != w.value {
				t.Errorf("%s%v = %v (found %v), want %v", w.name, w.labels, v, ok, w.value)
			}
		}
		if mf := mfs["rmm_sel_critical_new_total"]; mf == nil || mf.GetType() != dto.MetricType_COUNTER {
			t.Errorf("rmm_sel_critical_new_total is not a counter")
		}
		if _, ok := metricValue(mfs, "rmm_health_last_run_timestamp_seconds", nil); !ok {
			t.Error("no rmm_health_last_run_timestamp_seconds: a dead cron job would go unnoticed")
		}
		for name, mf := range mfs {
			if mf.GetHelp() == "" {
				t.Errorf("%s has no HELP", name)
			}
		}
	})

	// The second run with the table's state: the panic was reported once.
	t.Run("second run", func(t *testing.T) {
		r := tf.rmm("health", "--timeout", scenarioTimeout, "--state", filepath.Join(tf.dir, "state-table.json"))
		if r.code != NagiosCritical {
			t.Fatalf("exit %d", r.code)
		}
		checkGolden(t, "health_second_run.golden", []byte(normalise(t, tf, r.stdout)))
	})
}

// The panicked host pages once per panic: CRITICAL on the first run, OK on
// the next, CRITICAL again only when a new critical event arrives, over
// IPMI and over Redfish; a cleared and refilled SEL and a look with
// --save-state=false behave.
func TestHealthSELNewSinceLastRun(t *testing.T) {
	t.Parallel()
	tf := newTestFleet(t,
		testHost{name: "p-ipmi", protocols: "[ipmi]", scenarios: "[panicked]"},
		testHost{name: "p-redfish", protocols: "[redfish]", vendor: "dell", scenarios: "[panicked]"},
	)
	for _, name := range []string{"p-ipmi", "p-redfish"} {
		t.Run(name, func(t *testing.T) {
			m := tf.host(name).Machine
			state := filepath.Join(tf.dir, name+".json")
			steps := []struct {
				name    string
				before  func()
				args    []string
				want    nagiosState
				wantNew int
				total   uint64
			}{
				{"first run reports the panic", nil, nil, stateCritical, 4, 4},
				{"second run does not", nil, nil, stateOK, 0, 4},
				{"a look without saving does not consume a new panic", m.Panic, []string{"--save-state=false"}, stateCritical, 4, 8},
				{"the new panic is reported", nil, nil, stateCritical, 4, 8},
				{"and only once", nil, nil, stateOK, 0, 8},
				{"a warning-level event is not a page", func() {
					m.AddSEL(machine.SELRecord{RecordType: 0x02, GeneratorID: 0x20, SensorType: 0x01, SensorNum: 0x30,
						EventType: 0x01, EventData: [3]byte{0x07}, Message: "Upper Non-critical going high", Severity: "Warning"})
				}, nil, stateOK, 0, 8},
				{"cleared and refilled: the new panic counts", func() { m.ClearSEL(); m.Panic() }, nil, stateCritical, 4, 12},
				{"cleared and empty", m.ClearSEL, nil, stateOK, 0, 12},
				{"after an empty log every critical record is new", m.Panic, nil, stateCritical, 4, 16},
			}
			for _, st := range steps {
				if st.before != nil {
					st.before()
				}
				rep, r := tf.healthJSON(append([]string{name, "--state", state}, st.args...)...)
				h := hostOf(t, rep, name)
				if r.code != int(st.want) || h.Status != st.want {
					t.Fatalf("%s: exit %d, host %s; want %s\n%+v\n%s", st.name, r.code, h.Status, st.want, h.Checks, r.stderr)
				}
				if h.SEL == nil || len(h.SEL.NewCritical) != st.wantNew || h.SEL.NewCriticalTotal != st.total {
					t.Fatalf("%s: sel %+v, want %d new, total %d", st.name, h.SEL, st.wantNew, st.total)
				}
			}
			f, err := healthstate.Load(state)
			if err != nil {
				t.Fatal(err)
			}
			e := f.Find(name, tf.host(name).Spec.Addr.String())
			if e == nil || e.CriticalTotal != 16 || e.Last == nil || e.BMCIdentity == "" {
				t.Errorf("state entry %+v", e)
			}
		})
	}
}

// A host seen for the first time does not page for events older than
// --sel-since.
func TestHealthFirstRunSince(t *testing.T) {
	t.Parallel()
	tf := newTestFleet(t, testHost{name: "old-panic", protocols: "[ipmi]"})
	m := tf.host("old-panic").Machine
	for _, r := range machine.PanicRecords(time.Now().Add(-72*time.Hour), machine.PanicMessage) {
		m.AddSEL(r)
	}
	rep, r := tf.healthJSON("old-panic", "--state", filepath.Join(tf.dir, "a.json"))
	if r.code != NagiosOK || len(hostOf(t, rep, "old-panic").SEL.NewCritical) != 0 {
		t.Errorf("a 3-day-old panic paged on the first run: exit %d %+v", r.code, hostOf(t, rep, "old-panic").SEL)
	}
	rep, r = tf.healthJSON("old-panic", "--state", filepath.Join(tf.dir, "b.json"), "--sel-since", "0")
	if r.code != NagiosCritical || len(hostOf(t, rep, "old-panic").SEL.NewCritical) != 4 {
		t.Errorf("--sel-since 0: exit %d %+v", r.code, hostOf(t, rep, "old-panic").SEL)
	}
}

// Exit codes follow the Nagios convention, per single-host check, and
// everything that is not a verdict on a host is UNKNOWN (3), never
// CRITICAL (2), with a status line on stdout for Nagios to show.
func TestHealthExitCodes(t *testing.T) {
	t.Parallel()
	tf := newTestFleet(t,
		testHost{name: "fine", protocols: "[ipmi]"},
		testHost{name: "warm", protocols: "[ipmi]"},
		testHost{name: "gone", protocols: "[ipmi]", scenarios: "[dead]"},
	)
	if err := tf.host("warm").Machine.SetSensorReading(machine.SensorCPUTemp, 88); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(tf.dir, "no-such-inventory.yaml")
	tests := []struct {
		name       string
		args       []string
		want       int
		wantStdout string
	}{
		{"ok", []string{"health", "fine"}, NagiosOK, "RMM OK - fine: all checks ok | critical=0;;;0;1 warning=0;;;0;1 unknown=0;;;0;1 ok=1;;;0;1\n"},
		{"warning", []string{"health", "warm"}, NagiosWarning, "RMM WARNING - warm: sensors warning: CPU Temp 88 degrees C warning (at or above upper non-critical threshold)"},
		{"critical", []string{"health", "gone", "--timeout", "1s"}, NagiosCritical, "RMM CRITICAL - gone: reachable critical: bmc unreachable (timeout)"},
		{"worst host wins", []string{"health", "fine,warm"}, NagiosWarning, "RMM WARNING - 0 critical, 1 warning, 0 unknown, 1 ok: warm sensors warning"},
		{"unknown flag", []string{"health", "--no-such-flag"}, NagiosUnknown, "RMM UNKNOWN - unknown flag: --no-such-flag\n"},
		{"bad output format", []string{"health", "-o", "xml"}, NagiosUnknown, "RMM UNKNOWN - unknown output format \"xml\""},
		{"bad timeout", []string{"health", "--timeout", "-1s"}, NagiosUnknown, "RMM UNKNOWN - --timeout must be positive"},
		{"unknown host", []string{"health", "nosuchhost"}, NagiosUnknown, "RMM UNKNOWN - "},
		{"missing inventory", []string{"-i", missing, "health"}, NagiosUnknown, "RMM UNKNOWN - "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tf.rmm(tt.args...)
			if r.code != tt.want {
				t.Fatalf("exit %d, want %d\n%s\n%s", r.code, tt.want, r.stdout, r.stderr)
			}
			if !strings.HasPrefix(r.stdout, tt.wantStdout) {
				t.Errorf("stdout %q, want it to start with %q", r.stdout, tt.wantStdout)
			}
			if tt.want == NagiosUnknown && !strings.HasPrefix(r.stderr, "rmm: ") {
				t.Errorf("no error on stderr: %q", r.stderr)
			}
		})
	}

	t.Run("--problems lists only hosts that are not OK", func(t *testing.T) {
		r := tf.rmm("health", "fine,warm", "--problems")
		rows := strings.Split(strings.TrimSpace(r.stdout), "\n")
		if r.code != NagiosWarning || len(rows) != 3 || !strings.HasPrefix(rows[2], "warm ") {
			t.Errorf("exit %d:\n%s", r.code, r.stdout)
		}
	})

	t.Run("interrupted", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(300*time.Millisecond, cancel)
		r := tf.run(ctx, "", false, "health", "--timeout", "5s")
		if r.code != NagiosUnknown || !strings.HasPrefix(r.stdout, "RMM UNKNOWN - ") {
			t.Fatalf("exit %d, want UNKNOWN\n%s%s", r.code, r.stdout, r.stderr)
		}
	})
}

// -o prometheus --output-file replaces the file atomically, readable by the
// textfile collector (another user), and leaves no temporary file.
func TestHealthOutputFile(t *testing.T) {
	t.Parallel()
	tf := newTestFleet(t, testHost{name: "one", protocols: "[ipmi]"})
	dir := t.TempDir()
	path := filepath.Join(dir, "rmm.prom")
	if err := os.WriteFile(path, []byte("old\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := tf.rmm("health", "-o", "prometheus", "--output-file", path)
	if r.code != NagiosOK || r.stdout != "" {
		t.Fatalf("exit %d, stdout %q\n%s", r.code, r.stdout, r.stderr)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	parseMetrics(t, string(b))
	st, _ := os.Stat(path)
	if st.Mode().Perm() != 0o644 {
		t.Errorf("mode %v, want 0644", st.Mode().Perm())
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("files left in the textfile directory: %v", entries)
	}
}

// Pure pieces: state ranking, and the status line's shape and bounds.
func TestHealthStateRankingAndStatusLine(t *testing.T) {
	if worse(stateUnknown, stateWarning) != stateWarning || worse(stateCritical, stateUnknown) != stateCritical ||
		worse(stateOK, stateUnknown) != stateUnknown {
		t.Error("ranking is not CRITICAL > WARNING > UNKNOWN > OK")
	}
	rep := &healthReport{Status: stateCritical}
	for i := range 6 {
		h := hostHealth{Host: fmt.Sprintf("h%d", i)}
		h.add(checkReachable, stateCritical, "bmc unreachable (timeout) | pipe")
		h.settle()
		rep.Hosts = append(rep.Hosts, h)
		rep.Summary.count(h.Status)
	}
	line := statusLine(rep)
	want := "RMM CRITICAL - 6 critical, 0 warning, 0 unknown, 0 ok: h0 reachable critical: bmc unreachable (timeout) / pipe; " +
		"h1 reachable critical: bmc unreachable (timeout) / pipe; h2 reachable critical: bmc unreachable (timeout) / pipe; and 3 more" +
		" | critical=6;;;0;6 warning=0;;;0;6 unknown=0;;;0;6 ok=0;;;0;6"
	if line != want {
		t.Errorf("status line\n got %s\nwant %s", line, want)
	}
	if strings.Count(line, "|") != 1 {
		t.Error("a '|' in the text would cut the Nagios output short")
	}
}

// parseMetrics parses the Prometheus text format with client_golang's own
// parser, failing the test on any error.
func parseMetrics(t *testing.T, text string) map[string]*dto.MetricFamily {
	t.Helper()
	p := expfmt.NewTextParser(model.LegacyValidation)
	mfs, err := p.TextToMetricFamilies(strings.NewReader(text))
	if err != nil {
		t.Fatalf("prometheus text does not parse: %v\n%s", err, text)
	}
	if strings.Contains(text, testPassword) {
		t.Fatal("the BMC password is in the metrics")
	}
	return mfs
}

// metricValue finds the sample of name whose labels include want.
func metricValue(mfs map[string]*dto.MetricFamily, name string, want map[string]string) (float64, bool) {
	mf := mfs[name]
	if mf == nil {
		return 0, false
	}
next:
	for _, m := range mf.GetMetric() {
		have := map[string]string{}
		for _, lp := range m.GetLabel() {
			have[lp.GetName()] = lp.GetValue()
		}
		for k, v := range want {
			if have[k] != v {
				continue next
			}
		}
		switch {
		case m.Gauge != nil:
			return m.GetGauge().GetValue(), true
		case m.Counter != nil:
			return m.GetCounter().GetValue(), true
		case m.Untyped != nil:
			return m.GetUntyped().GetValue(), true
		}
	}
	return 0, false
}

// labelValues lists a label's values across a family, sorted.
func labelValues(mfs map[string]*dto.MetricFamily, name, label string) []string {
	var out []string
	for _, m := range mfs[name].GetMetric() {
		for _, lp := range m.GetLabel() {
			if lp.GetName() == label {
				out = append(out, lp.GetValue())
			}
		}
	}
	sort.Strings(out)
	return out
}
