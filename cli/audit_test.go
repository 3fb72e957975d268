package cli

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rmm-project/rmm/bmc"
	"github.com/rmm-project/rmm/sim"
)

// auditHosts: one host per thing audit must tell apart.
var auditHosts = []testHost{
	{name: "ok-ipmi", protocols: "[ipmi]"},
	// Both protocols, identity recorded and matching (rmm sim gives the
	// machine the identity the inventory expects).
	{name: "ok-both", protocols: "[ipmi, redfish]", vendor: "dell", extra: "    expect: {uuid: 11111111-2222-4333-8444-555555555555}"},
	{name: "dead", protocols: "[ipmi]", scenarios: "[dead]"},
	{name: "dead-both", protocols: "[redfish, ipmi]", vendor: "dell", scenarios: "[dead]"},
	{name: "slow", protocols: "[ipmi]", scenarios: "[slow]", delay: "20ms"},
	{name: "badpw", protocols: "[ipmi, redfish]", vendor: "dell", scenarios: "[wrong-credentials]"},
	{name: "replaced", protocols: "[ipmi]", scenarios: "[replaced]", extra: "    expect: {uuid: 0f0e0d0c-0b0a-0908-0706-050403020100}"},
	// IPMI logs in, Redfish's certificate changed: only logging in with
	// every protocol (not just the first that works) finds it.
	{name: "second-proto-bad", protocols: "[ipmi, redfish]", vendor: "supermicro",
		extra: "    redfish: {fingerprint: 0000000000000000000000000000000000000000000000000000000000000000}"},
	{name: "panicked", protocols: "[ipmi]", scenarios: "[panicked]"},
	{name: "overheat", protocols: "[ipmi]", scenarios: "[overheat]"},
	{name: "powered-off", protocols: "[ipmi]", extra: "    expect: {power: on}"},
	// HPE's tree says Storage is critical: audit does not care either.
	{name: "rollup-only", protocols: "[redfish]", vendor: "hpe"},
}

// Every scenario in every format: the row, the exit code, the summary.
// Audit is about reachability, login and identity; a panicked, hot or
// powered-off host whose BMC answers passes (that is rmm health's
// business).
func TestAuditScenarios(t *testing.T) {
	t.Parallel()
	tf := newTestFleet(t, auditHosts...)
	tf.host("powered-off").Machine.SetPower(false)
	want := map[string]struct {
		result             bmc.Outcome
		ping, tcp          string
		ipmi, redfish, idc string
	}{
		"ok-ipmi":          {bmc.OutcomeOK, "ok", "", "ok", "", "not recorded"},
		"ok-both":          {bmc.OutcomeOK, "ok", "ok", "ok", "ok", "ok"},
		"dead":             {bmc.OutcomeTimeout, "no answer", "", "timeout", "", "unread"},
		"dead-both":        {bmc.OutcomeTimeout, "no answer", "ok", "timeout", "timeout", "unread"},
		"slow":             {bmc.OutcomeOK, "ok", "", "ok", "", "not recorded"},
		"badpw":            {bmc.OutcomeAuthFailed, "ok", "ok", "auth failed", "auth failed", "unread"},
		"replaced":         {bmc.OutcomeIdentityMismatch, "ok", "", "ok", "", "mismatch"},
		"second-proto-bad": {bmc.OutcomeAuthFailed, "ok", "ok", "ok", "cert changed", "not recorded"},
		"panicked":         {bmc.OutcomeOK, "ok", "", "ok", "", "not recorded"},
		"overheat":         {bmc.OutcomeOK, "ok", "", "ok", "", "not recorded"},
		"powered-off":      {bmc.OutcomeOK, "ok", "", "ok", "", "not recorded"},
		"rollup-only":      {bmc.OutcomeOK, "", "ok", "", "ok", "not recorded"},
	}

	formats := []string{FormatTable, FormatJSON, FormatCSV}
	runs := map[string]result{}
	for _, f := range formats {
		r := tf.rmm("audit", "-o", f, "--timeout", scenarioTimeout)
		if r.code != ExitFailed {
			t.Fatalf("-o %s: exit %d, want %d\n%s", f, r.code, ExitFailed, r.stderr)
		}
		if !strings.Contains(r.stderr, "5 of 12 hosts failed") {
			t.Errorf("-o %s: no summary line:\n%s", f, r.stderr)
		}
		runs[f] = r
	}

	t.Run("table", func(t *testing.T) {
		checkGolden(t, "audit_table.golden", []byte(normalise(t, tf, runs[FormatTable].stdout)))
	})

	var rs []auditResult
	t.Run("json", func(t *testing.T) {
		if err := json.Unmarshal([]byte(runs[FormatJSON].stdout), &rs); err != nil {
			t.Fatal(err)
		}
		if len(rs) != len(auditHosts) {
			t.Fatalf("%d rows", len(rs))
		}
		for i, r := range rs {
			if r.Host != auditHosts[i].name {
				t.Fatalf("row %d is %s (inventory order)", i, r.Host)
			}
			w := want[r.Host]
			got := r.row()
			if r.Result != w.result || got[2] != w.ping || got[3] != w.tcp || got[4] != w.ipmi || got[5] != w.redfish || r.IdentityCheck != w.idc {
				t.Errorf("%s: %v (%s), want %+v", r.Host, got, r.Error, w)
			}
			if r.Result != bmc.OutcomeOK && !strings.Contains(r.Error, r.Host+" (bmc "+r.BMC+")") {
				t.Errorf("%s: error %q does not say host and BMC", r.Host, r.Error)
			}
			if len(r.Sessions) != strings.Count(auditHosts[i].protocols, ",")+1 {
				t.Errorf("%s: %d sessions for protocols %s: every listed protocol must be tried", r.Host, len(r.Sessions), auditHosts[i].protocols)
			}
		}
		ok := rs[1]
		if ok.Identity == nil || ok.Identity.UUID != "11111111-2222-4333-8444-555555555555" || ok.Identity.Firmware == "" {
			t.Errorf("ok-both identity %+v", ok.Identity)
		}
		if p := rs[0].Presence; len(p) != 1 || p[0].Method != "rmcp-ping" || p[0].IPMI == nil || !*p[0].IPMI {
			t.Errorf("ok-ipmi presence %+v: want an RMCP pong that says IPMI", p)
		}
	})

	t.Run("csv", func(t *testing.T) {
		recs, err := csv.NewReader(strings.NewReader(runs[FormatCSV].stdout)).ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) != len(auditHosts)+1 || strings.Join(recs[0], ",") != "host,bmc,ping,tcp,ipmi,redfish,identity,firmware,result" {
			t.Fatalf("csv header/rows: %v", recs)
		}
		for i, r := range rs {
			if got, w := strings.Join(recs[i+1], "|"), strings.Join(r.row(), "|"); got != w {
				t.Errorf("csv row %d %q, json row %q", i, got, w)
			}
		}
	})

	t.Run("hints on stderr", func(t *testing.T) {
		for _, w := range []string{"badpw (bmc ", "hint: check the password", "identity mismatch: uuid is", "certificate does not match"} {
			if !strings.Contains(runs[FormatTable].stderr, w) {
				t.Errorf("stderr lacks %q:\n%s", w, runs[FormatTable].stderr)
			}
		}
	})
}

// A dead host costs about one --timeout, whatever its protocols: the
// presence probes run beside the sessions, and the sessions share the
// host's deadline. Waiting for the ping first and then a timeout per
// protocol would take ping + 2 x timeout for dead-both.
func TestAuditDeadHostCostsOneTimeout(t *testing.T) {
	t.Parallel()
	tf := newTestFleet(t,
		testHost{name: "d-ipmi", protocols: "[ipmi]", scenarios: "[dead]"},
		testHost{name: "d-redfish", protocols: "[redfish]", vendor: "dell", scenarios: "[dead]"},
		testHost{name: "d-both", protocols: "[ipmi, redfish]", vendor: "dell", scenarios: "[dead]"},
		testHost{name: "fine1", protocols: "[ipmi]"},
		testHost{name: "fine2", protocols: "[ipmi, redfish]", vendor: "dell"},
	)
	const timeout = 3 * time.Second
	start := time.Now()
	r := tf.rmm("audit", "-o", "json", "--timeout", timeout.String())
	elapsed := time.Since(start)
	if r.code != ExitFailed {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
	var rs []auditResult
	if err := json.Unmarshal([]byte(r.stdout), &rs); err != nil {
		t.Fatal(err)
	}
	for _, a := range rs {
		dead := strings.HasPrefix(a.Host, "d-")
		if dead != (a.Result == bmc.OutcomeTimeout) {
			t.Errorf("%s: %s", a.Host, a.Result)
		}
		if d := time.Duration(a.DurationMS) * time.Millisecond; d > timeout+time.Second {
			t.Errorf("%s took %v with --timeout %v", a.Host, d, timeout)
		}
	}
	// Generous: the point is one timeout, not 2 s + 2 x 3 s.
	if elapsed > timeout+2500*time.Millisecond {
		t.Errorf("audit took %v with --timeout %v", elapsed, timeout)
	}
}

// All hosts fine: exit 0 and the closing line; a usage error is exit 2.
func TestAuditExitCodes(t *testing.T) {
	t.Parallel()
	tf := newTestFleet(t, testHost{name: "a1", protocols: "[ipmi]"}, testHost{name: "a2", protocols: "[redfish]", vendor: "dell"})
	r := tf.rmm("audit")
	if r.code != ExitOK || !strings.Contains(r.stderr, "audit: all 2 hosts ok") {
		t.Errorf("exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	for _, args := range [][]string{{"audit", "-o", "yaml"}, {"audit", "--ping-timeout", "0s"}, {"audit", "nosuchhost"}} {
		if r := tf.rmm(args...); r.code != ExitUsage {
			t.Errorf("%v: exit %d, want %d", args, r.code, ExitUsage)
		}
	}
}

// Benchmark sizes: go test ./cli -run '^$' -bench Audit -benchtime 1x
// -audit.hosts 1000 (default 200, so a plain -bench run stays short).
var (
	auditBenchHosts   = flag.Int("audit.hosts", 200, "BenchmarkAudit: simulated BMCs")
	auditBenchDead    = flag.Float64("audit.dead", 0.05, "BenchmarkAudit: fraction of them dead")
	auditBenchTimeout = flag.Duration("audit.timeout", 2*time.Second, "BenchmarkAudit: --timeout")
)

// auditBenchBase is the benchmark's loopback block: outside the blocks
// package tests use (cli 127.0.50-69.x) and the bench harness (127.1.x).
var auditBenchBase = netip.MustParseAddr("127.9.0.1")

// BenchmarkAudit audits a simulated fleet with some BMCs dead and reports
// the wall time against one --timeout plus the healthy hosts' own time
// (the goal: at most 1.5x).
func BenchmarkAudit(b *testing.B) {
	n := *auditBenchHosts
	dead := int(float64(n) * *auditBenchDead)
	every := 0
	if dead > 0 {
		every = n / dead
	}
	dir := b.TempDir()
	var y strings.Builder
	fmt.Fprintf(&y, "version: 1\ndefaults:\n  credentials: test\n  protocols: [ipmi]\n  ipmi: {port: %d}\n", sim.DefaultIPMIPort())
	fmt.Fprintf(&y, "credentials:\n  test: {user: admin, password_env: RMM_TEST_PASSWORD}\ngroups:\n  healthy: {}\n  dead: {}\nhosts:\n")
	for i, a := range sim.Addrs(auditBenchBase, n) {
		if every > 0 && i%every == every-1 {
			fmt.Fprintf(&y, "  - {name: h%04d, bmc: %s, groups: [dead], sim: {scenario: [dead]}}\n", i, a)
		} else {
			fmt.Fprintf(&y, "  - {name: h%04d, bmc: %s, groups: [healthy]}\n", i, a)
		}
	}
	inv := filepath.Join(dir, "inventory.yaml")
	if err := os.WriteFile(inv, []byte(y.String()), 0o600); err != nil {
		b.Fatal(err)
	}
	vars := map[string]string{"RMM_TEST_PASSWORD": testPassword, "XDG_STATE_HOME": dir, "HOME": dir}
	getenv := func(k string) string { return vars[k] }
	loaded, err := loadInventory(&Env{IO: Test(nil, nil, nil), Getenv: getenv}, &globalOptions{inventory: inv})
	if err != nil {
		b.Fatal(err)
	}
	specs, err := simSpecs(context.Background(), loaded, loaded.Hosts, nil)
	if err != nil {
		b.Fatal(err)
	}
	fl, err := sim.Start(context.Background(), specs)
	if err != nil {
		b.Fatal(err)
	}
	defer fl.Close()
	audit := func(sel string) (time.Duration, int) {
		var out, errb bytes.Buffer
		env := &Env{IO: Test(strings.NewReader(""), &out, &errb), Getenv: getenv, Providers: DefaultProviders()}
		start := time.Now()
		code := Main(context.Background(), []string{"-i", inv, "audit", sel, "-o", "json", "--timeout", auditBenchTimeout.String()}, env)
		took := time.Since(start)
		if code != ExitOK && code != ExitFailed {
			b.Fatalf("audit %s: exit %d\n%s", sel, code, errb.String())
		}
		var rs []auditResult
		if err := json.Unmarshal(out.Bytes(), &rs); err != nil {
			b.Fatalf("%v\n%s", err, errb.String())
		}
		failed := 0
		for _, r := range rs {
			if r.Result != bmc.OutcomeOK {
				failed++
			}
		}
		return took, failed
	}
	b.ResetTimer()
	var healthy, all time.Duration
	for range b.N {
		h, hf := audit("@healthy")
		a, af := audit("all")
		if hf != 0 || af != dead {
			b.Fatalf("%d healthy hosts failed, %d of all failed (want %d dead)", hf, af, dead)
		}
		healthy += h
		all += a
	}
	b.StopTimer()
	healthy /= time.Duration(b.N)
	all /= time.Duration(b.N)
	budget := *auditBenchTimeout + healthy
	b.ReportMetric(healthy.Seconds(), "s/healthy-only")
	b.ReportMetric(all.Seconds(), "s/audit")
	b.ReportMetric(all.Seconds()/budget.Seconds(), "x(timeout+healthy)")
	b.Logf("%d BMCs, %d dead, --timeout %s: healthy-only %s, all %s = %.2fx (one timeout + healthy time)",
		n, dead, *auditBenchTimeout, healthy.Round(time.Millisecond), all.Round(time.Millisecond), all.Seconds()/budget.Seconds())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := fl.WaitSessionsClosed(ctx); err != nil {
		b.Errorf("sessions left open: %v", err)
	}
}
