package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // the Europe/Amsterdam case must not depend on the host's zoneinfo

	"github.com/rmm-project/rmm/journal"
	"github.com/rmm-project/rmm/sim/machine"
)

// goldenSEL fills hosts' SELs with records at fixed times, so tables are
// stable: a pre-init boot event, a temperature going critical and back
// (logged out of time order), a fan warning, and a kernel panic with
// Linux's panic text records.
func goldenSEL(t *testing.T, tf *testFleet) {
	t.Helper()
	t0 := time.Date(2026, 3, 1, 9, 15, 0, 0, time.UTC)
	m := tf.host("g-ipmi").Machine
	for _, r := range []machine.SELRecord{
		{Time: time.Unix(42, 0), RecordType: 0x02, GeneratorID: 0x20, SensorType: 0x1d, SensorNum: 0x30, EventType: 0x6f, EventData: [3]byte{0x01, 0xff, 0xff}},
		{Time: t0.Add(5 * time.Minute), RecordType: 0x02, GeneratorID: 0x20, SensorType: 0x01, SensorNum: 0x10, EventType: 0x81, EventData: [3]byte{0x59, 0x50, 0x5f}},
		{Time: t0, RecordType: 0x02, GeneratorID: 0x20, SensorType: 0x01, SensorNum: 0x10, EventType: 0x01, EventData: [3]byte{0x59, 0x65, 0x5f}},
		{Time: t0.Add(10 * time.Minute), RecordType: 0x02, GeneratorID: 0x20, SensorType: 0x04, SensorNum: 0x12, EventType: 0x01, EventData: [3]byte{0x50, 0x08, 0x0a}},
	} {
		m.AddSEL(r)
	}
	for _, r := range machine.PanicRecords(t0.Add(time.Hour), machine.PanicMessage) {
		m.AddSEL(r)
	}
	for _, r := range machine.PanicRecords(t0.Add(2*time.Hour), machine.PanicMessage) {
		tf.host("g-redfish").Machine.AddSEL(r)
	}
}

func goldenFleet(t *testing.T) *testFleet {
	tf := newTestFleet(t,
		testHost{name: "g-ipmi", protocols: "[ipmi]"},
		testHost{name: "g-redfish", protocols: "[redfish]", vendor: "dmtf"},
		testHost{name: "g-empty", protocols: "[ipmi]"},
	)
	tf.vars["TZ"] = "UTC"
	goldenSEL(t, tf)
	return tf
}

// The sel table, CSV and JSON, byte for byte (go test ./cli -run
// TestSELGolden -update rewrites them).
func TestSELGolden(t *testing.T) {
	t.Parallel()
	tf := goldenFleet(t)
	tests := []struct {
		golden string
		args   []string
	}{
		{"sel_table.golden", []string{"sel", "all"}},
		{"sel_critical_since.golden", []string{"sel", "all", "--severity", "critical", "--since", "2026-03-01T10:00:00Z"}},
		{"sel_csv.golden", []string{"sel", "g-ipmi", "-o", "csv"}},
		{"sel_json.golden", []string{"sel", "g-ipmi,g-empty", "-o", "json"}},
	}
	for _, tt := range tests {
		t.Run(tt.golden, func(t *testing.T) {
			r := tf.rmm(tt.args...)
			if r.code != 0 {
				t.Fatalf("exit %d\n%s", r.code, r.stderr)
			}
			// BMC addresses depend on which loopback block this fleet got.
			out := r.stdout
			for _, h := range tf.fleet.Hosts() {
				out = strings.ReplaceAll(out, `"`+h.Spec.Addr.String()+`"`, `"bmc-of-`+h.Spec.Name+`"`)
			}
			checkGolden(t, tt.golden, []byte(out))
		})
	}
	t.Run("times in $TZ", func(t *testing.T) {
		tf.vars["TZ"] = "Europe/Amsterdam"
		defer func() { tf.vars["TZ"] = "UTC" }()
		r := tf.rmm("sel", "g-ipmi")
		if !strings.Contains(r.stdout, "2026-03-01 10:15:00") || strings.Contains(r.stdout, "2026-03-01 09:15:00") {
			t.Errorf("CET times expected:\n%s", r.stdout)
		}
	})
}

// In a terminal with colour, the kernel panic row is bold red, other
// critical rows red, warnings yellow; with NO_COLOR or a pipe there is no
// escape code, and the NOTE column says the same in words.
func TestSELHighlight(t *testing.T) {
	t.Parallel()
	tf := goldenFleet(t)
	run := func(outTTY, color bool) string {
		var out, errb bytes.Buffer
		s := Test(nil, &out, &errb)
		s.OutTTY, s.ErrTTY, s.Color = outTTY, outTTY, color
		env := &Env{IO: s, Getenv: tf.getenv, Providers: DefaultProviders()}
		if code := Main(context.Background(), []string{"-i", tf.inv, "sel", "g-ipmi"}, env); code != 0 {
			t.Fatalf("exit %d: %s", code, errb.String())
		}
		return out.String()
	}
	line := func(out, has string) string {
		for _, l := range strings.Split(out, "\n") {
			if strings.Contains(l, has) {
				return l
			}
		}
		t.Fatalf("no line with %q in\n%s", has, out)
		return ""
	}
	colour := run(true, true)
	if l := line(colour, "KERNEL PANIC"); !strings.HasPrefix(l, "\x1b[1;31m") || !strings.HasSuffix(l, "\x1b[0m") {
		t.Errorf("panic row not bold red: %q", l)
	}
	if l := line(colour, "09:15:00"); !strings.HasPrefix(l, "\x1b[31m") {
		t.Errorf("critical row not red: %q", l)
	}
	if l := line(colour, "Fan"); !strings.HasPrefix(l, "\x1b[33m") {
		t.Errorf("warning row not yellow: %q", l)
	}
	if l := line(colour, "HOST"); strings.Contains(l, "\x1b") {
		t.Errorf("header coloured: %q", l)
	}
	for name, out := range map[string]string{"NO_COLOR": run(true, false), "pipe": run(false, true)} {
		if strings.Contains(out, "\x1b") {
			t.Errorf("%s: escape codes in\n%q", name, out)
		}
		if !strings.Contains(line(out, "OS Critical Stop"), "KERNEL PANIC: Fatal exception in interrupt") {
			t.Errorf("%s: no plain-text panic marker:\n%s", name, out)
		}
	}
}

// A panicked host's SEL shows the OS Critical Stop entry over IPMI and
// over each vendor's Redfish event log, and never an entry from the
// vendor's audit, maintenance, lifecycle or BMC log (the captured trees
// have those with entries).
func TestSELKernelPanicEveryVendor(t *testing.T) {
	t.Parallel()
	notSEL := map[string]string{
		"ipmi1":       "",
		"dell1":       "Successfully logged in using root",                     // iDRAC Lifecycle log
		"hpe1":        "Browser login: root",                                   // iLO event log (IEL)
		"lenovo1":     "Restored default locking behavior",                     // XCC AuditLog
		"supermicro1": "[MEL-0207] The host FW user password has been removed", // maintenance log
		"dmtf1":       "System May be Melting",                                 // the BMC's own log
	}
	tf := newTestFleet(t,
		testHost{name: "ipmi1", protocols: "[ipmi]", scenarios: "[panicked]"},
		testHost{name: "dell1", protocols: "[redfish]", vendor: "dell", scenarios: "[panicked]"},
		testHost{name: "hpe1", protocols: "[redfish]", vendor: "hpe", scenarios: "[panicked]"},
		testHost{name: "lenovo1", protocols: "[redfish]", vendor: "lenovo", scenarios: "[panicked]"},
		testHost{name: "supermicro1", protocols: "[redfish]", vendor: "supermicro", scenarios: "[panicked]"},
		testHost{name: "dmtf1", protocols: "[redfish]", vendor: "dmtf", scenarios: "[panicked]"},
	)
	r := tf.rmm("sel", "all", "-o", "json")
	if r.code != 0 {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
	var hosts []selHost
	if err := json.Unmarshal([]byte(r.stdout), &hosts); err != nil {
		t.Fatal(err)
	}
	if len(hosts) != len(notSEL) {
		t.Fatalf("%d hosts in the output", len(hosts))
	}
	order := []string{"ipmi1", "dell1", "hpe1", "lenovo1", "supermicro1", "dmtf1"}
	for i, h := range hosts {
		if h.Host != order[i] {
			t.Errorf("host %d is %s, want %s (inventory order)", i, h.Host, order[i])
		}
		t.Run(h.Host, func(t *testing.T) {
			panics := 0
			var last time.Time
			for _, e := range h.Entries {
				if e.KernelPanic {
					panics++
					if e.SensorType != "OS Critical Stop" || e.Severity != "critical" {
						t.Errorf("panic entry %+v", e)
					}
				}
				if m := notSEL[h.Host]; m != "" && strings.Contains(e.Message+e.Event, m) {
					t.Errorf("entry from a log that is not the SEL: %+v", e)
				}
				if e.Time != nil {
					if e.Time.Before(last) {
						t.Errorf("entry %s (%s) before the one above it (%s)", e.ID, e.Time, last)
					}
					last = *e.Time
				}
			}
			if panics != 1 {
				t.Errorf("%d kernel panic entries, want 1:\n%+v", panics, h.Entries)
			}
		})
	}
	table := tf.rmm("sel", "all")
	for _, n := range order {
		found := false
		for _, l := range strings.Split(table.stdout, "\n") {
			if strings.HasPrefix(l, n+" ") && strings.Contains(l, "KERNEL PANIC") {
				found = true
			}
		}
		if !found {
			t.Errorf("%s: no KERNEL PANIC row in the table:\n%s", n, table.stdout)
		}
	}
	if !strings.Contains(table.stderr, "6 kernel panic entries") {
		t.Errorf("stderr:\n%s", table.stderr)
	}
}

// Filters, bad flags, and a dead host among good ones.
func TestSELFiltersAndErrors(t *testing.T) {
	t.Parallel()
	tf := newTestFleet(t,
		testHost{name: "f1", protocols: "[ipmi]", scenarios: "[panicked]"},
		testHost{name: "f2", protocols: "[ipmi]", scenarios: "[dead]"},
		testHost{name: "f3", protocols: "[ipmi]"},
	)
	tf.host("f1").Machine.AddSEL(machine.SELRecord{RecordType: 0x02, SensorType: 0x04, SensorNum: 0x12, EventType: 0x01, EventData: [3]byte{0x50, 0x08, 0x0a}})
	t.Run("usage", func(t *testing.T) {
		for _, args := range [][]string{
			{"sel", "f1", "--severity", "bad"},
			{"sel", "f1", "--since", "yesterday"},
			{"sel", "f1", "-o", "yaml"},
			{"sel"},
		} {
			if r := tf.rmm(args...); r.code != ExitUsage {
				t.Errorf("%v: exit %d\n%s", args, r.code, r.stderr)
			}
		}
	})
	t.Run("severity warning", func(t *testing.T) {
		r := tf.rmm("sel", "f1", "--severity", "warning", "-o", "json")
		var hs []selHost
		if err := json.Unmarshal([]byte(r.stdout), &hs); err != nil || len(hs) != 1 {
			t.Fatalf("%v: %s", err, r.stdout)
		}
		if hs[0].Total != 5 || len(hs[0].Entries) != 5 {
			t.Errorf("total %d, shown %d", hs[0].Total, len(hs[0].Entries))
		}
		r = tf.rmm("sel", "f1", "--severity", "critical", "-o", "json")
		_ = json.Unmarshal([]byte(r.stdout), &hs)
		for _, e := range hs[0].Entries {
			if e.Severity != "critical" {
				t.Errorf("--severity critical shows %+v", e)
			}
		}
		if len(hs[0].Entries) != 4 {
			t.Errorf("%d critical entries, want 4", len(hs[0].Entries))
		}
	})
	t.Run("since", func(t *testing.T) {
		r := tf.rmm("sel", "f1", "--since", "1h", "-o", "json")
		var hs []selHost
		_ = json.Unmarshal([]byte(r.stdout), &hs)
		if len(hs) != 1 || len(hs[0].Entries) != 5 {
			t.Errorf("--since 1h: %s", r.stdout)
		}
		r = tf.rmm("sel", "f1", "--since", "2099-01-01")
		if r.code != 0 || r.stdout != "" || !strings.Contains(r.stderr, "no SEL entries match") {
			t.Errorf("--since in the future: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
		}
	})
	t.Run("dead host", func(t *testing.T) {
		r := tf.rmm("sel", "all", "--timeout", "2s", "-o", "json")
		if r.code != ExitFailed {
			t.Fatalf("exit %d", r.code)
		}
		var hs []selHost
		if err := json.Unmarshal([]byte(r.stdout), &hs); err != nil || len(hs) != 3 {
			t.Fatalf("%v: %s", err, r.stdout)
		}
		if hs[1].Host != "f2" || hs[1].Error == "" || len(hs[0].Entries) == 0 || hs[2].Error != "" {
			t.Errorf("%+v", hs)
		}
		for _, w := range []string{"f2 (bmc " + tf.host("f2").Spec.Addr.String() + ")", "1 of 3 hosts failed"} {
			if !strings.Contains(r.stderr, w) {
				t.Errorf("stderr lacks %q:\n%s", w, r.stderr)
			}
		}
	})
}

// rmm sel clear asks like power does, refuses without a terminal or an
// answer, clears over IPMI and Redfish, and journals one line per host
// with the entry counts before and after.
func TestSELClear(t *testing.T) {
	t.Parallel()
	tf := newTestFleet(t,
		testHost{name: "c-ipmi", protocols: "[ipmi]", scenarios: "[panicked]"},
		testHost{name: "c-rf", protocols: "[redfish]", vendor: "supermicro", scenarios: "[panicked]"},
		testHost{name: "c-swapped", protocols: "[ipmi]", scenarios: "[panicked, replaced]", extra: "    expect: {uuid: 0f0e0d0c-0b0a-0908-0706-050403020100}"},
	)
	ipmiM, rfM := tf.host("c-ipmi").Machine, tf.host("c-rf").Machine
	t.Run("no terminal, no --yes", func(t *testing.T) {
		r := tf.rmm("sel", "clear", "c-ipmi")
		if r.code != ExitRefused || !strings.Contains(r.stderr, "refusing to clear the SEL on 1 host without confirmation") {
			t.Errorf("exit %d\n%s", r.code, r.stderr)
		}
	})
	t.Run("terminal, answered no", func(t *testing.T) {
		r := tf.run(context.Background(), "n\n", true, "sel", "clear", "c-ipmi")
		if r.code != ExitRefused || !strings.Contains(r.stderr, "About to clear the SEL on 1 host") || !strings.Contains(r.stderr, tf.host("c-ipmi").Spec.Addr.String()) {
			t.Errorf("exit %d\n%s", r.code, r.stderr)
		}
	})
	t.Run("dry run", func(t *testing.T) {
		r := tf.rmm("sel", "clear", "c-ipmi", "--dry-run")
		if r.code != 0 || !strings.Contains(r.stdout, "sel clear") {
			t.Errorf("exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
	})
	if ipmiM.SELClears() != 0 || rfM.SELClears() != 0 || tf.journal() != "" {
		t.Fatalf("a refusal cleared something or wrote the journal")
	}
	t.Run("identity mismatch", func(t *testing.T) {
		r := tf.rmm("sel", "clear", "c-swapped", "--yes")
		if r.code != ExitFailed || !strings.Contains(r.stderr, "identity mismatch") {
			t.Errorf("exit %d\n%s", r.code, r.stderr)
		}
		if tf.host("c-swapped").Machine.SELClears() != 0 {
			t.Errorf("the wrong machine's SEL was cleared")
		}
	})
	t.Run("terminal, answered yes", func(t *testing.T) {
		r := tf.run(context.Background(), "y\n", true, "sel", "clear", "c-ipmi", "--reason", "INC-7")
		if r.code != 0 {
			t.Fatalf("exit %d\n%s", r.code, r.stderr)
		}
		if ipmiM.SELClears() != 1 || len(ipmiM.SEL()) != 0 {
			t.Errorf("clears %d, %d entries left", ipmiM.SELClears(), len(ipmiM.SEL()))
		}
	})
	t.Run("redfish, --yes", func(t *testing.T) {
		r := tf.rmm("sel", "clear", "c-rf", "--yes", "-o", "json")
		if r.code != 0 {
			t.Fatalf("exit %d\n%s", r.code, r.stderr)
		}
		if rfM.SELClears() != 1 {
			t.Errorf("the machine's SEL was not cleared")
		}
		var rs []actionResult
		if err := json.Unmarshal([]byte(r.stdout), &rs); err != nil || len(rs) != 1 || rs[0].Before == "" || rs[0].After != "0" {
			t.Errorf("%v %s", err, r.stdout)
		}
	})
	es, bad := journal.Read(strings.NewReader(tf.journal()))
	if len(bad) != 0 || len(es) != 2 {
		t.Fatalf("journal: %d entries, %v\n%s", len(es), bad, tf.journal())
	}
	byHost := map[string]journal.Entry{}
	for _, e := range es {
		byHost[e.Host] = e
	}
	if e := byHost["c-ipmi"]; e.Action != "sel clear" || e.Before != "4" || e.After != "0" || e.Result != "ok" || e.Reason != "INC-7" || e.Protocol != "ipmi" {
		t.Errorf("ipmi journal line %+v", e)
	}
	if e := byHost["c-rf"]; e.Action != "sel clear" || e.After != "0" || e.Result != "ok" || e.Protocol != "redfish" {
		t.Errorf("redfish journal line %+v", e)
	}
	if e := byHost["c-swapped"]; e.Host != "" {
		t.Errorf("a refused identity check was journalled as an action: %+v", e)
	}
}

// TestInteropSELMatchesIpmitoolAndFreeIPMI reads the SEL of one simulated
// panicked BMC with rmm and with the installed ipmitool ("sel elist") and
// FreeIPMI ("ipmi-sel"), and checks that the OS Critical Stop entry has
// the same sensor type, event and direction in all three. The password
// reaches ipmitool through IPMI_PASSWORD (-E) and ipmi-sel through a
// 0600 config file, never argv.
func TestInteropSELMatchesIpmitoolAndFreeIPMI(t *testing.T) {
	t.Parallel()
	tf := newTestFleet(t, testHost{name: "interop1", protocols: "[ipmi]", scenarios: "[panicked]"})
	h := tf.host("interop1")
	r := tf.rmm("sel", "interop1", "-o", "json")
	if r.code != 0 {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
	var hs []selHost
	if err := json.Unmarshal([]byte(r.stdout), &hs); err != nil || len(hs) != 1 {
		t.Fatalf("%v: %s", err, r.stdout)
	}
	var panicEntry selEntry
	for _, e := range hs[0].Entries {
		if e.KernelPanic {
			panicEntry = e
		}
	}
	if panicEntry.ID == "" {
		t.Fatalf("rmm shows no kernel panic entry: %s", r.stdout)
	}
	addr, port := h.Spec.Addr.String(), h.IPMIAddr().Port()

	t.Run("ipmitool", func(t *testing.T) {
		bin := needInteropTool(t, "ipmitool", "ipmitool")
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, bin, "-I", "lanplus", "-C", "3", "-H", addr, "-p", strconv.Itoa(int(port)), "-U", "admin", "-E", "sel", "elist")
		cmd.Env = append(os.Environ(), "IPMI_PASSWORD="+testPassword)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("ipmitool: %v\n%s", err, out)
		}
		// "   1 | 11/30/26 | 02:47:57 UTC | OS Critical Stop OS Stop | Run-time critical stop | Asserted"
		f := strings.Split(rowWithID(string(out), panicEntry.ID), "|")
		if len(f) < 6 {
			t.Fatalf("no entry %s in:\n%s", panicEntry.ID, out)
		}
		if got, want := strings.TrimSpace(f[3]), panicEntry.SensorType+" "+panicEntry.Sensor; got != want {
			t.Errorf("sensor: ipmitool %q, rmm %q", got, want)
		}
		if got := strings.TrimSpace(f[4]); got != panicEntry.Event {
			t.Errorf("event: ipmitool %q, rmm %q", got, panicEntry.Event)
		}
		if got := strings.TrimSpace(f[5]); !strings.EqualFold(got, panicEntry.Direction) {
			t.Errorf("direction: ipmitool %q, rmm %q", got, panicEntry.Direction)
		}
	})
	t.Run("ipmi-sel", func(t *testing.T) {
		bin := needInteropTool(t, "ipmi-sel", "freeipmi-tools")
		dir := t.TempDir()
		conf := filepath.Join(dir, "freeipmi.conf")
		if err := os.WriteFile(conf, []byte("username admin\npassword "+testPassword+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, bin, "--config-file", conf, "-D", "LAN_2_0", "-h", h.IPMIAddr().String(),
			"--sdr-cache-directory", dir, "--no-header-output", "--output-event-state")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("ipmi-sel: %v\n%s", err, out)
		}
		// "1 | Nov-30-2026 | 02:47:57 | OS Stop | OS Critical Stop | Critical | Run-time Critical Stop"
		f := strings.Split(rowWithID(string(out), panicEntry.ID), "|")
		if len(f) < 7 {
			t.Fatalf("no entry %s in:\n%s", panicEntry.ID, out)
		}
		if got := strings.TrimSpace(f[3]); got != panicEntry.Sensor {
			t.Errorf("sensor name: ipmi-sel %q, rmm %q", got, panicEntry.Sensor)
		}
		if got := strings.TrimSpace(f[4]); got != panicEntry.SensorType {
			t.Errorf("sensor type: ipmi-sel %q, rmm %q", got, panicEntry.SensorType)
		}
		if got := strings.TrimSpace(f[5]); !strings.EqualFold(got, string(panicEntry.Severity)) {
			t.Errorf("event state: ipmi-sel %q, rmm severity %q", got, panicEntry.Severity)
		}
		if got := strings.TrimSpace(strings.Split(f[6], ";")[0]); !strings.EqualFold(got, panicEntry.Event) {
			t.Errorf("event: ipmi-sel %q, rmm %q", got, panicEntry.Event)
		}
		// FreeIPMI prints deassertions as "... Deasserted"; an assertion
		// has no suffix.
		if strings.Contains(f[6], "Deasserted") != (panicEntry.Direction == "deasserted") {
			t.Errorf("direction: ipmi-sel %q, rmm %q", f[6], panicEntry.Direction)
		}
		if strings.Contains(string(out), testPassword) {
			t.Errorf("ipmi-sel printed the password")
		}
	})
}

// needInteropTool finds an interop peer: without it the test skips
// loudly, and with RMM_REQUIRE_INTEROP=1 (CI) it fails.
func needInteropTool(t *testing.T, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	msg := name + " not found (Debian package " + pkg + "): rmm sel is NOT compared with " + name
	if os.Getenv("RMM_REQUIRE_INTEROP") == "1" {
		t.Fatalf("%s, and RMM_REQUIRE_INTEROP=1", msg)
	}
	t.Skipf("SKIP: %s; set RMM_REQUIRE_INTEROP=1 to make this a failure", msg)
	return ""
}

// rowWithID returns the '|'-separated row whose first column is id (hex,
// as ipmitool prints record ids; FreeIPMI prints them in decimal, which
// is the same for the few records of a test SEL).
func rowWithID(out, id string) string {
	for _, l := range strings.Split(out, "\n") {
		if first, _, ok := strings.Cut(l, "|"); ok && strings.TrimSpace(first) == id {
			return l
		}
	}
	return ""
}
