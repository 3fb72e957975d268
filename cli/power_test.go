package cli

import (
	"context"
	"encoding/json"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rmm-project/rmm/bmc"
	"github.com/rmm-project/rmm/journal"
)

// Every power action over IPMI and over each vendor's Redfish tree, asserting
// the simulated machine really changed.
func TestPowerActionsEveryProtocolAndVendor(t *testing.T) {
	t.Parallel()
	tf := newTestFleet(t,
		testHost{name: "ipmi1", protocols: "[ipmi]"},
		testHost{name: "dell1", protocols: "[redfish]", vendor: "dell"},
		testHost{name: "hpe1", protocols: "[redfish]", vendor: "hpe"},
		testHost{name: "lenovo1", protocols: "[redfish]", vendor: "lenovo"},
		testHost{name: "smc1", protocols: "[redfish]", vendor: "supermicro"},
		testHost{name: "dmtf1", protocols: "[redfish]", vendor: "dmtf"},
	)
	for _, h := range tf.fleet.Hosts() {
		name := h.Spec.Name
		wantProto := "redfish"
		if name == "ipmi1" {
			wantProto = "ipmi"
		}
		t.Run(name, func(t *testing.T) {
			m := tf.host(name).Machine
			steps := []struct {
				args      []string
				wantPower bool
				wantLast  string // last action the machine received
				wantAfter string
			}{
				{[]string{"off", "--yes"}, false, "off", "off"},
				{[]string{"off", "--yes"}, false, "", "off"}, // idempotent: already off
				{[]string{"on"}, true, "on", "on"},
				{[]string{"on"}, true, "", "on"}, // on when on = success
				{[]string{"cycle", "--yes", "--wait"}, true, "", "on"},
				{[]string{"reset", "--yes"}, true, "reset", "on"},
				{[]string{"soft", "--yes", "--wait"}, false, "soft", "off"},
				{[]string{"cycle", "--yes", "--wait"}, true, "", "on"}, // cycle of an off host powers it on
			}
			for _, st := range steps {
				before := len(m.Actions())
				r := tf.rmm(append([]string{"power"}, append(st.args[:1], append([]string{name, "-o", "json"}, st.args[1:]...)...)...)...)
				if r.code != 0 {
					t.Fatalf("power %v: exit %d\n%s%s", st.args, r.code, r.stdout, r.stderr)
				}
				var rs []actionResult
				if err := json.Unmarshal([]byte(r.stdout), &rs); err != nil || len(rs) != 1 {
					t.Fatalf("power %v: bad json %v: %s", st.args, err, r.stdout)
				}
				if rs[0].Protocol != wantProto || rs[0].Result != bmc.OutcomeOK || rs[0].After != st.wantAfter {
					t.Fatalf("power %v: %+v, want protocol %s after %s", st.args, rs[0], wantProto, st.wantAfter)
				}
				if m.PowerOn() != st.wantPower {
					t.Fatalf("power %v: machine power on = %v, want %v", st.args, m.PowerOn(), st.wantPower)
				}
				acts := m.Actions()[before:]
				switch {
				case st.wantLast == "" && st.args[0] == "cycle":
					if len(acts) == 0 {
						t.Fatalf("power cycle: the machine received nothing")
					}
				case st.wantLast == "":
					if len(acts) != 0 {
						t.Fatalf("power %v on a host already there sent %v; want nothing sent", st.args, acts)
					}
				default:
					if len(acts) == 0 || acts[len(acts)-1] != st.wantLast {
						t.Fatalf("power %v: machine received %v, want last %q", st.args, acts, st.wantLast)
					}
				}
			}
		})
	}
	// The journal has one line per action per host, all ok.
	j := tf.journal()
	if n := strings.Count(j, "\n"); n != 6*8 {
		t.Errorf("journal has %d lines, want %d", n, 6*8)
	}
}

// Cycle on BMCs without PowerCycle (HPE, Lenovo: ForceRestart when on,
// On when off) and on Supermicro, whose reset types are only in ActionInfo.
func TestPowerCycleMapsToWhatTheBMCAllows(t *testing.T) {
	t.Parallel()
	tf := newTestFleet(t,
		testHost{name: "hpe", protocols: "[redfish]", vendor: "hpe"},
		testHost{name: "lenovo", protocols: "[redfish]", vendor: "lenovo"},
		testHost{name: "smc", protocols: "[redfish]", vendor: "supermicro"},
		testHost{name: "dell", protocols: "[redfish]", vendor: "dell"},
	)
	want := map[string]string{"hpe": "reset", "lenovo": "reset", "smc": "cycle", "dell": "cycle"}
	r := tf.rmm("power", "cycle", "all", "--yes")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	for name, w := range want {
		acts := tf.host(name).Machine.Actions()
		if !slices.Equal(acts, []string{w}) {
			t.Errorf("%s: machine saw %v, want [%s]", name, acts, w)
		}
	}
}

// A fleet with dead and slow BMCs ends in about one --timeout, healthy hosts
// all succeed, and the exit code and JSON say which failed and why.
func TestPowerStatusDeadAndSlowHosts(t *testing.T) {
	t.Parallel()
	hosts := []testHost{
		{name: "dead1", protocols: "[ipmi]", scenarios: "[dead]"},
		{name: "dead2", protocols: "[redfish]", vendor: "dell", scenarios: "[dead]"},
		{name: "slow1", protocols: "[ipmi]", scenarios: "[slow]", delay: "300ms"},
		{name: "slow2", protocols: "[redfish]", vendor: "hpe", scenarios: "[slow]", delay: "100ms"},
		{name: "tooslow", protocols: "[ipmi]", scenarios: "[slow]", delay: "10s"},
		{name: "badpw", protocols: "[ipmi]", scenarios: "[wrong-credentials]"},
	}
	for _, n := range []string{"ok1", "ok2", "ok3", "ok4"} {
		hosts = append(hosts, testHost{name: n, protocols: "[ipmi]"})
	}
	tf := newTestFleet(t, hosts...)
	start := time.Now()
	r := tf.rmm("power", "status", "all", "--timeout", "3s", "-o", "json")
	elapsed := time.Since(start)
	if r.code != ExitFailed {
		t.Fatalf("exit %d, want %d\n%s", r.code, ExitFailed, r.stderr)
	}
	// Generous bound: the point is "one timeout", not "the sum of them".
	if elapsed > 9*time.Second {
		t.Errorf("took %v with a 3s timeout: timeouts added up", elapsed)
	}
	var rs []actionResult
	if err := json.Unmarshal([]byte(r.stdout), &rs); err != nil {
		t.Fatal(err)
	}
	want := map[string]bmc.Outcome{"dead1": bmc.OutcomeTimeout, "dead2": bmc.OutcomeTimeout, "slow1": bmc.OutcomeOK, "slow2": bmc.OutcomeOK,
		"tooslow": bmc.OutcomeTimeout, "badpw": bmc.OutcomeAuthFailed, "ok1": bmc.OutcomeOK, "ok2": bmc.OutcomeOK, "ok3": bmc.OutcomeOK, "ok4": bmc.OutcomeOK}
	for i, pr := range rs {
		if pr.Host != hosts[i].name {
			t.Errorf("row %d is %s, want %s (inventory order)", i, pr.Host, hosts[i].name)
		}
		if pr.Result != want[pr.Host] {
			t.Errorf("%s: result %q (%s), want %q", pr.Host, pr.Result, pr.Error, want[pr.Host])
		}
		if pr.Result != bmc.OutcomeOK && !strings.Contains(pr.Error, pr.Host+" (bmc "+pr.BMC+")") {
			t.Errorf("%s: error %q does not name host and BMC IP", pr.Host, pr.Error)
		}
	}
	if !strings.Contains(r.stderr, "4 of 10 hosts failed") {
		t.Errorf("no summary line in stderr:\n%s", r.stderr)
	}
}

// Refusals: each with a clear message naming host and BMC IP, and nothing
// powered.
func TestPowerRefusesAndPowersNothing(t *testing.T) {
	t.Parallel()
	tf := newTestFleet(t,
		testHost{name: "good", protocols: "[ipmi]"},
		testHost{name: "badpw", protocols: "[ipmi]", scenarios: "[wrong-credentials]"},
		testHost{name: "suite", protocols: "[ipmi]", extra: "    ipmi: {cipher_suite: 2}"},
		testHost{name: "swapped", protocols: "[ipmi]", scenarios: "[replaced]", extra: "    expect: {uuid: 0f0e0d0c-0b0a-4908-8706-050403020100}"},
		testHost{name: "swappedrf", protocols: "[redfish]", vendor: "dell", scenarios: "[replaced]", extra: "    expect: {serial: SN-EXPECTED-1}"},
	)
	addr := func(name string) string { return tf.host(name).Spec.Addr.String() }
	tests := []struct {
		name     string
		args     []string
		stdin    string
		tty      bool
		wantCode int
		wantErr  []string
	}{
		{"no terminal, no --yes", []string{"power", "off", "good"}, "", false, ExitRefused,
			[]string{"refusing to power off 1 host without confirmation", "--yes"}},
		{"terminal, answered no", []string{"power", "cycle", "good"}, "n\n", true, ExitRefused,
			[]string{"good", addr("good"), "not confirmed"}},
		{"wrong credentials", []string{"power", "off", "badpw", "--yes"}, "", false, ExitFailed,
			[]string{"badpw (bmc " + addr("badpw") + ")", "authentication failed", "hint:"}},
		{"cipher suite the BMC does not offer", []string{"power", "off", "suite", "--yes"}, "", false, ExitFailed,
			[]string{"suite (bmc " + addr("suite") + ")", "cipher suite"}},
		{"identity mismatch over IPMI", []string{"power", "cycle", "swapped", "--yes"}, "", false, ExitFailed,
			[]string{"swapped (bmc " + addr("swapped") + ")", "identity mismatch", "inventory expects 0f0e0d0c-0b0a-4908-8706-050403020100"}},
		{"identity mismatch over Redfish", []string{"power", "off", "swappedrf", "--yes"}, "", false, ExitFailed,
			[]string{"swappedrf (bmc " + addr("swappedrf") + ")", "identity mismatch", "SN-EXPECTED-1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tf.run(context.Background(), tt.stdin, tt.tty, tt.args...)
			if r.code != tt.wantCode {
				t.Fatalf("exit %d, want %d\n%s", r.code, tt.wantCode, r.stderr)
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(r.stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, r.stderr)
				}
			}
		})
	}
	for _, h := range tf.fleet.Hosts() {
		if acts := h.Machine.Actions(); len(acts) != 0 {
			t.Errorf("%s received power actions %v; every case must power nothing", h.Spec.Name, acts)
		}
		if !h.Machine.PowerOn() {
			t.Errorf("%s is off", h.Spec.Name)
		}
	}
}

// On a terminal, more than five hosts need the count typed.
func TestPowerConfirmationTypesTheCount(t *testing.T) {
	t.Parallel()
	var hosts []testHost
	for _, n := range []string{"a1", "a2", "a3", "a4", "a5", "a6"} {
		hosts = append(hosts, testHost{name: n, protocols: "[ipmi]"})
	}
	tf := newTestFleet(t, hosts...)
	r := tf.run(context.Background(), "y\n", true, "power", "off", "all")
	if r.code != ExitRefused || !strings.Contains(r.stderr, "Type the number of hosts (6)") {
		t.Fatalf("'y' accepted for 6 hosts: exit %d\n%s", r.code, r.stderr)
	}
	for _, h := range hosts {
		if !strings.Contains(r.stderr, h.name) {
			t.Errorf("prompt does not name %s", h.name)
		}
	}
	r = tf.run(context.Background(), "6\n", true, "power", "off", "all", "--reason=maintenance")
	if r.code != 0 {
		t.Fatalf("typed count refused: exit %d\n%s", r.code, r.stderr)
	}
	for _, h := range tf.fleet.Hosts() {
		if h.Machine.PowerOn() {
			t.Errorf("%s still on", h.Spec.Name)
		}
	}
}

// --dry-run shows host, BMC IP, protocols, credentials source and action,
// sends nothing and resolves no password.
func TestPowerDryRun(t *testing.T) {
	t.Parallel()
	tf := newTestFleet(t, testHost{name: "d1", protocols: "[redfish, ipmi]", vendor: "dmtf"})
	delete(tf.vars, "RMM_TEST_PASSWORD") // a dry run must not need it
	r := tf.rmm("power", "cycle", "d1", "--dry-run")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	for _, w := range []string{"d1", tf.host("d1").Spec.Addr.String(), "redfish,ipmi", "env RMM_TEST_PASSWORD", "power cycle"} {
		if !strings.Contains(r.stdout, w) {
			t.Errorf("dry run output lacks %q:\n%s", w, r.stdout)
		}
	}
	if n := len(tf.host("d1").Machine.Actions()); n != 0 {
		t.Errorf("dry run sent %d actions", n)
	}
	if tf.journal() != "" {
		t.Errorf("dry run wrote the journal")
	}
}

// Ctrl-C in the middle of a fleet-wide action: every session closed, and the
// journal has a whole line for each host that was acted on, none torn.
func TestPowerInterruptedClosesSessionsAndJournals(t *testing.T) {
	t.Parallel()
	var hosts []testHost
	for _, n := range []string{"i1", "i2", "i3", "i4", "i5", "i6", "i7", "i8"} {
		hosts = append(hosts, testHost{name: n, protocols: "[ipmi]", scenarios: "[slow]", delay: "150ms"})
	}
	tf := newTestFleet(t, hosts...)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(1500*time.Millisecond, cancel)
	r := tf.run(ctx, "", false, "power", "cycle", "all", "--yes", "-j", "2", "--wait", "--reason", "interrupt-test")
	if r.code != ExitInterrupted {
		t.Fatalf("exit %d, want %d\n%s", r.code, ExitInterrupted, r.stderr)
	}
	entries, bad := journal.Read(strings.NewReader(tf.journal()))
	if len(bad) != 0 {
		t.Fatalf("torn journal lines: %v", bad)
	}
	acted := 0
	for _, h := range tf.fleet.Hosts() {
		if len(h.Machine.Actions()) > 0 {
			acted++
		}
	}
	if len(entries) != acted {
		t.Errorf("journal has %d lines, but %d hosts received an action", len(entries), acted)
	}
	if acted == 0 || acted == len(hosts) {
		t.Errorf("%d of %d hosts acted on: the interrupt did not land mid-run", acted, len(hosts))
	}
	// newTestFleet's cleanup asserts every BMC session was closed.
}

// The journal records operator, reason, before and after.
func TestPowerJournalLine(t *testing.T) {
	t.Parallel()
	tf := newTestFleet(t, testHost{name: "j1", protocols: "[ipmi]"})
	tf.vars["SUDO_USER"] = "alice"
	if r := tf.rmm("power", "off", "j1", "--yes", "--reason", "INC-42"); r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	es, _ := journal.Read(strings.NewReader(tf.journal()))
	if len(es) != 1 {
		t.Fatalf("%d entries", len(es))
	}
	e := es[0]
	if e.Operator != "alice (via sudo)" || e.Reason != "INC-42" || e.Host != "j1" || e.BMC != tf.host("j1").Spec.Addr.String() ||
		e.Protocol != "ipmi" || e.Action != "power off" || e.Before != "on" || e.After != "off" || e.Result != "ok" {
		t.Errorf("journal entry %+v", e)
	}
	// A request refused before anything reached the BMC leaves no line.
	if r := tf.rmm("power", "reset", "j1", "--yes"); r.code != ExitFailed || !strings.Contains(r.stderr, "host is off") {
		t.Fatalf("reset of an off host: exit %d: %s", r.code, r.stderr)
	}
	if es, _ := journal.Read(strings.NewReader(tf.journal())); len(es) != 1 {
		t.Errorf("journal has %d lines after a reset that was never sent, want 1", len(es))
	}
	r := tf.rmm("journal", "-o", "json")
	if r.code != 0 || !strings.Contains(r.stdout, `"reason": "INC-42"`) {
		t.Errorf("rmm journal: %d %s %s", r.code, r.stdout, r.stderr)
	}
	if st, err := os.Stat(tf.dir + "/state/rmm/audit.log"); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("journal file: %v %v", st, err)
	}
}
