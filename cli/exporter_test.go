package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rmm-project/rmm/bmc"
	"github.com/rmm-project/rmm/secret"
)

// lockedBuffer is a bytes.Buffer that the exporter's goroutines and the test
// may use at once.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *lockedBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *lockedBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// runningExporter is rmm exporter serving in-process on loopback.
type runningExporter struct {
	url    string
	stderr *lockedBuffer
	cancel context.CancelFunc
	done   chan error
	// client never uses a proxy (and the URL is an IP literal: no DNS).
	client *http.Client
}

// startExporter runs exporterRun on a listener the test opened on a
// loopback address of its own (port chosen by the kernel), as the flags
// would configure it.
func startExporter(t *testing.T, tf *testFleet, set func(o *exporterOptions)) *runningExporter {
	t.Helper()
	ln, err := net.ListenTCP("tcp", net.TCPAddrFromAddrPort(netip.AddrPortFrom(nextBase(t), 0)))
	if err != nil {
		t.Fatal(err)
	}
	var stdout bytes.Buffer
	stderr := &lockedBuffer{}
	io := Test(strings.NewReader(""), &stdout, stderr)
	env := &Env{IO: io, Getenv: tf.getenv, Providers: DefaultProviders()}
	o := &exporterOptions{env: env, g: &globalOptions{inventory: tf.inv}, listen: defaultExporterListen,
		timeout: 10 * time.Second, maxConcurrent: 64, listener: ln}
	if set != nil {
		set(o)
	}
	ctx, cancel := context.WithCancel(context.Background())
	e := &runningExporter{url: "http://" + ln.Addr().String(), stderr: stderr, cancel: cancel, done: make(chan error, 1),
		client: &http.Client{Transport: &http.Transport{Proxy: nil}, Timeout: 30 * time.Second}}
	go func() { e.done <- exporterRun(ctx, o) }()
	t.Cleanup(func() {
		e.client.CloseIdleConnections()
		cancel()
		select {
		case <-e.done:
		case <-time.After(shutdownTimeout + 5*time.Second):
			t.Error("exporter did not stop")
		}
		if strings.Contains(stderr.String(), testPassword) {
			t.Errorf("the BMC password is in the exporter's log:\n%s", stderr.String())
		}
	})
	return e
}

// stop cancels the exporter and returns exporterRun's result.
func (e *runningExporter) stop(t *testing.T) error {
	t.Helper()
	e.cancel()
	select {
	case err := <-e.done:
		e.done <- err // for the cleanup
		return err
	case <-time.After(shutdownTimeout + 5*time.Second):
		t.Fatal("exporter did not stop")
		return nil
	}
}

// get fetches path, with Prometheus's scrape timeout header when timeout
// is set, and fails the test if the password shows up.
func (e *runningExporter) get(t *testing.T, path string, timeout string) (int, string) {
	t.Helper()
	req, err := http.NewRequest("GET", e.url+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if timeout != "" {
		req.Header.Set("X-Prometheus-Scrape-Timeout-Seconds", timeout)
	}
	resp, err := e.client.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), testPassword) {
		t.Fatalf("GET %s: the BMC password is in the answer", path)
	}
	return resp.StatusCode, string(b)
}

// A real scrape over loopback: probes of a panicked, a healthy Redfish and
// a dead host; refused targets; the exporter's own metrics; shutdown.
func TestExporterServesProbesOverLoopback(t *testing.T) {
	t.Parallel()
	tf := newTestFleet(t,
		testHost{name: "panicked", protocols: "[ipmi]", scenarios: "[panicked]", extra: "    expect: {power: on}"},
		testHost{name: "fine-rf", protocols: "[redfish]", vendor: "dell"},
		testHost{name: "dead", protocols: "[ipmi]", scenarios: "[dead]"},
		testHost{name: "unserved", protocols: "[ipmi]"},
	)
	e := startExporter(t, tf, func(o *exporterOptions) { o.selector = []string{"all,!unserved"} })

	if code, body := e.get(t, "/", ""); code != 200 || !strings.Contains(body, "/probe?target=HOST") {
		t.Errorf("landing page: %d %s", code, body)
	}

	t.Run("panicked", func(t *testing.T) {
		code, body := e.get(t, "/probe?target=panicked", "10")
		if code != 200 {
			t.Fatalf("%d %s", code, body)
		}
		mfs := parseMetrics(t, body)
		for _, w := range []struct {
			name   string
			labels map[string]string
			value  float64
		}{
			{"rmm_bmc_up", map[string]string{"host": "panicked"}, 1},
			{"rmm_bmc_status", map[string]string{"host": "panicked"}, 0},
			{"rmm_bmc_health_status", map[string]string{"host": "panicked", "check": "power"}, 0},
			{"rmm_bmc_power_on", map[string]string{"host": "panicked"}, 1},
			{"rmm_sel_entries", map[string]string{"host": "panicked"}, 4},
			{"rmm_sel_critical_entries", map[string]string{"host": "panicked"}, 4},
			{"rmm_bmc_info", map[string]string{"host": "panicked", "protocol": "ipmi", "bmc": tf.host("panicked").Spec.Addr.String()}, 1},
		} {
			if v, ok := metricValue(mfs, w.name, w.labels); !ok || v != w.value {
				t.Errorf("%s%v = %v (found %v), want %v", w.name, w.labels, v, ok, w.value)
			}
		}
		latest, ok := metricValue(mfs, "rmm_sel_latest_critical_timestamp_seconds", nil)
		if !ok || time.Since(time.Unix(int64(latest), 0)) > time.Hour {
			t.Errorf("latest critical time stamp %v (%v): want the panic's, a moment ago", latest, ok)
		}
		// No memory, so no "new since last run" in the exporter.
		if _, ok := mfs["rmm_sel_critical_new_total"]; ok {
			t.Error("the exporter exposes rmm_sel_critical_new_total")
		}
		if checks := labelValues(mfs, "rmm_bmc_health_status", "check"); strings.Contains(strings.Join(checks, ","), "sel") {
			t.Errorf("checks %v: the exporter has no sel check when the SEL was read", checks)
		}
	})

	t.Run("redfish", func(t *testing.T) {
		code, body := e.get(t, "/probe?target=fine-rf", "")
		mfs := parseMetrics(t, body)
		if v, ok := metricValue(mfs, "rmm_bmc_status", map[string]string{"host": "fine-rf"}); code != 200 || !ok || v != 0 {
			t.Errorf("%d status %v %v", code, v, ok)
		}
		if n := len(labelValues(mfs, "rmm_sensor_value", "sensor")); n < 10 {
			t.Errorf("%d sensor readings", n)
		}
	})

	t.Run("dead host within the scrape timeout", func(t *testing.T) {
		start := time.Now()
		code, body := e.get(t, "/probe?target=dead", "1.5")
		// --timeout is 10s: answering in about a second proves the header
		// was honoured (generous bound for a loaded machine).
		if took := time.Since(start); took > 6*time.Second {
			t.Errorf("took %v with a 1.5 s scrape timeout", took)
		}
		mfs := parseMetrics(t, body)
		up, _ := metricValue(mfs, "rmm_bmc_up", map[string]string{"host": "dead"})
		reach, _ := metricValue(mfs, "rmm_bmc_health_status", map[string]string{"host": "dead", "check": "reachable"})
		if code != 200 || up != 0 || reach != float64(NagiosCritical) {
			t.Errorf("%d up %v reachable %v", code, up, reach)
		}
	})

	t.Run("refused targets", func(t *testing.T) {
		for _, tt := range []struct{ target, want string }{
			{"", "missing target"},
			{"nosuch", `unknown target "nosuch"`},
			{"unserved", `unknown target "unserved"`},
			{tf.host("dead").Spec.Addr.String(), "never addresses"},
			{"<script>", "never addresses"},
		} {
			code, body := e.get(t, "/probe?target="+tt.target, "")
			if code != http.StatusBadRequest || !strings.Contains(body, tt.want) {
				t.Errorf("target %q: %d %q, want 400 %q", tt.target, code, body, tt.want)
			}
			if strings.Contains(body, "<script>") {
				t.Errorf("target %q echoed back", tt.target)
			}
		}
	})

	t.Run("debug", func(t *testing.T) {
		code, body := e.get(t, "/probe?target=dead&debug=true", "1")
		var hh hostHealth
		if err := json.Unmarshal([]byte(body), &hh); code != 200 || err != nil || hh.Error == "" || hh.Hint == "" {
			t.Errorf("%d %v %s", code, err, body)
		}
	})

	t.Run("own metrics", func(t *testing.T) {
		code, body := e.get(t, "/metrics", "")
		if code != 200 {
			t.Fatal(code)
		}
		mfs := parseMetrics(t, body)
		for _, w := range []struct {
			result string
			n      float64
		}{{"ok", 2}, {"critical", 2}, {"bad_target", 5}, {"overloaded", 0}} {
			if v, _ := metricValue(mfs, "rmm_exporter_probes_total", map[string]string{"result": w.result}); v != w.n {
				t.Errorf("rmm_exporter_probes_total{result=%q} = %v, want %v", w.result, v, w.n)
			}
		}
		if v, _ := metricValue(mfs, "rmm_exporter_targets", nil); v != 3 {
			t.Errorf("targets %v, want 3 (the selector leaves one out)", v)
		}
		if _, ok := mfs["go_goroutines"]; !ok {
			t.Error("no Go runtime metrics")
		}
	})

	if err := e.stop(t); err != nil {
		t.Errorf("graceful stop: %v", err)
	}
	if !strings.Contains(e.stderr.String(), "exporter: stopped") {
		t.Errorf("stderr:\n%s", e.stderr.String())
	}
	// newTestFleet's cleanup checks every BMC session was closed.
}

// --max-concurrent bounds probes across targets: with one slot taken, a
// probe that cannot start before its scrape deadline is answered 503.
func TestExporterConcurrencyLimit(t *testing.T) {
	t.Parallel()
	tf := newTestFleet(t,
		testHost{name: "hold", protocols: "[ipmi]", scenarios: "[dead]"},
		testHost{name: "quick", protocols: "[ipmi]"},
	)
	e := startExporter(t, tf, func(o *exporterOptions) { o.maxConcurrent = 1; o.timeout = 4 * time.Second })
	held := make(chan int, 1)
	go func() {
		code, _ := e.get(t, "/probe?target=hold", "")
		held <- code
	}()
	// Wait (bounded) until the slow probe holds the slot.
	for i := 0; ; i++ {
		_, body := e.get(t, "/metrics", "")
		if v, _ := metricValue(parseMetrics(t, body), "rmm_exporter_probes_in_flight", nil); v == 1 {
			break
		}
		if i == 200 {
			t.Fatal("the first probe never started")
		}
		time.Sleep(10 * time.Millisecond)
	}
	code, body := e.get(t, "/probe?target=quick", "1")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "--max-concurrent 1") {
		t.Errorf("second probe: %d %s, want 503", code, body)
	}
	if c := <-held; c != 200 {
		t.Errorf("first probe: %d", c)
	}
	// With the slot free again the same probe works.
	if code, _ := e.get(t, "/probe?target=quick", "5"); code != 200 {
		t.Errorf("probe after the slot was freed: %d", code)
	}
	_, body = e.get(t, "/metrics", "")
	if v, _ := metricValue(parseMetrics(t, body), "rmm_exporter_probes_total", map[string]string{"result": "overloaded"}); v != 1 {
		t.Errorf("overloaded probes %v, want 1", v)
	}
}

// Two Prometheus replicas probing one IPMI BMC at the same moment both get
// a full answer: probes of one host take turns (at once, each would cancel
// the other's SDR reservation and the sensors would read UNKNOWN).
func TestExporterProbesOfOneHostTakeTurns(t *testing.T) {
	t.Parallel()
	tf := newTestFleet(t, testHost{name: "shared", protocols: "[ipmi]", scenarios: "[slow]", delay: "5ms"})
	e := startExporter(t, tf, nil)
	const n = 4
	bodies := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, bodies[i] = e.get(t, "/probe?target=shared", "10")
		}()
	}
	wg.Wait()
	for i, b := range bodies {
		mfs := parseMetrics(t, b)
		if v, ok := metricValue(mfs, "rmm_bmc_health_status", map[string]string{"host": "shared", "check": "sensors"}); !ok || v != 0 {
			t.Errorf("probe %d: sensors check %v (%v), want 0", i, v, ok)
		}
	}
}

// SIGTERM with a probe in flight: the probe is cancelled, its session
// closed, and the server stops well within its shutdown bound.
func TestExporterGracefulShutdownWithProbeInFlight(t *testing.T) {
	t.Parallel()
	tf := newTestFleet(t, testHost{name: "stuck", protocols: "[ipmi]", scenarios: "[slow]", delay: "2s"})
	e := startExporter(t, tf, func(o *exporterOptions) { o.timeout = 60 * time.Second })
	got := make(chan int, 1)
	go func() {
		resp, err := e.client.Get(e.url + "/probe?target=stuck")
		if err != nil {
			got <- -1
			return
		}
		resp.Body.Close()
		got <- resp.StatusCode
	}()
	time.Sleep(500 * time.Millisecond) // the probe is opening its session
	start := time.Now()
	if err := e.stop(t); err != nil {
		t.Errorf("stop: %v", err)
	}
	if took := time.Since(start); took > shutdownTimeout {
		t.Errorf("shutdown took %v", took)
	}
	select {
	case <-got:
	case <-time.After(5 * time.Second):
		t.Error("the in-flight probe never finished")
	}
}

// The listen address is an IP literal with a port; names and missing
// ports are usage errors (exit 2) that say why.
func TestExporterFlagsRefuseNames(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"exporter", "--listen", "localhost:9790"}, "never uses DNS"},
		{[]string{"exporter", "--listen", "127.0.0.1"}, "IP address and port"},
		{[]string{"exporter", "--listen", ":9790"}, "IP address and port"},
		{[]string{"exporter", "--max-concurrent", "0"}, "--max-concurrent must be at least 1"},
		{[]string{"exporter", "--timeout", "0s"}, "--timeout must be positive"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			r := invRun(t, map[string]string{"RMM_TEST_PASSWORD": testPassword}, append([]string{"-i", fleetYAML}, tt.args...)...)
			if r.code != ExitUsage || !strings.Contains(r.stderr, tt.want) {
				t.Errorf("exit %d, stderr %q; want %d and %q", r.code, r.stderr, ExitUsage, tt.want)
			}
		})
	}
}

// --print-file-sd writes a file_sd list: host names as targets, groups and
// labels for relabelling, every label name valid for Prometheus.
func TestExporterPrintFileSD(t *testing.T) {
	r := invRun(t, nil, "-i", fleetYAML, "exporter", "--print-file-sd", "all")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	checkGolden(t, "exporter_file_sd.golden", []byte(r.stdout))
	var groups []fileSDGroup
	if err := json.Unmarshal([]byte(r.stdout), &groups); err != nil {
		t.Fatal(err)
	}
	for _, g := range groups {
		for k := range g.Labels {
			if !labelNameRe.MatchString(k) || strings.HasPrefix(k, "__") {
				t.Errorf("label name %q", k)
			}
		}
	}
	for _, tt := range []struct{ in, want string }{
		{"site", "site"}, {"rack-row", "rack_row"}, {"dc.zone/a", "dc_zone_a"}, {"9lives", "_lives"},
		{"job", "inventory_job"}, {"instance", "inventory_instance"}, {"__x", "inventory___x"},
	} {
		if got := promLabelName(tt.in); got != tt.want {
			t.Errorf("promLabelName(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// Label values come from the BMC; a password rmm knows is scrubbed from
// them before any metric is written.
func TestMetricsScrubPasswords(t *testing.T) {
	sc := &secret.Scrubbers{}
	sc.Add(secret.New(testPassword))
	reg := prometheus.NewRegistry()
	m := newBMCMetrics(reg, false, newStringScrubber(sc).scrub)
	hh := hostHealth{Host: "evil", BMC: "10.0.0.1", Up: true, Protocol: "redfish",
		Identity: &bmc.Identity{Firmware: "fw-" + testPassword, Vendor: "x"},
		Sensors:  []bmc.HealthItem{{Name: testPassword, Kind: "temperature", Severity: bmc.SeverityInfo}}}
	hh.add(checkReachable, stateOK, "")
	hh.settle()
	m.observe(&hh)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	for _, mf := range mfs {
		fmt.Fprintln(&buf, mf.String())
	}
	if strings.Contains(buf.String(), testPassword) {
		t.Fatal("a password reached a label value")
	}
	if !strings.Contains(buf.String(), "fw-"+secret.Redacted) {
		t.Errorf("scrubbed firmware label not found:\n%s", buf.String())
	}
}
