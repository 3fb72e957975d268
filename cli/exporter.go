package cli

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/netip"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/common/expfmt"
	"github.com/spf13/cobra"

	"github.com/rmm-project/rmm/inventory"
	"github.com/rmm-project/rmm/secret"
)

func init() { register(newExporterCmd) }

// Exporter defaults. 9790 is not in Prometheus's list of allocated exporter
// ports as far as we know; it is only a default.
const (
	defaultExporterListen = "127.0.0.1:9790"
	// scrapeTimeoutMargin is taken off Prometheus's scrape timeout so the
	// answer (with up=0 and the reason) arrives before Prometheus gives up.
	scrapeTimeoutMargin = 500 * time.Millisecond
	// shutdownTimeout bounds a graceful stop: probes in flight see their
	// context cancelled and close their sessions within bmc.CloseTimeout.
	shutdownTimeout = 10 * time.Second
)

// exporterOptions holds rmm exporter's flags and dependencies.
type exporterOptions struct {
	env *Env
	g   *globalOptions

	selector      []string
	listen        string
	timeout       time.Duration
	maxConcurrent int
	printFileSD   bool

	// listener, when set, is served instead of listening on --listen: tests
	// hand in a loopback listener on a port the kernel chose.
	listener net.Listener
	// ready, when set, is called once the server is serving.
	ready func(addr net.Addr)
}

func newExporterCmd(env *Env, g *globalOptions) *cobra.Command {
	o := &exporterOptions{env: env, g: g}
	cmd := &cobra.Command{
		Use:   "exporter [SELECTOR...]",
		Short: "Serve BMC health to Prometheus (multi-target exporter)",
		Long: `Serve the checks of rmm health over HTTP for Prometheus, in the multi-target
pattern of blackbox_exporter and ipmi_exporter:

  /probe?target=HOST   check one host and answer with its metrics; HOST is a
                       host name from the inventory (never an address: an
                       unknown name is refused with 400)
  /metrics             the exporter's own metrics (probes, durations, Go runtime)

Only the selected hosts (default all) may be probed, so one exporter per
site or group serves exactly the BMCs it can reach. --print-file-sd prints
a Prometheus file_sd target list for a selector and exits.

Each probe gets Prometheus's scrape timeout (X-Prometheus-Scrape-Timeout-
Seconds) less 0.5 s, at most --timeout, and at most --max-concurrent probes
talk to BMCs at once, one per BMC; a probe that cannot start before its
deadline is answered 503. The probe runs the same checks as rmm health; the SEL has no
"new since the last run" here (Prometheus keeps the history): the exporter
reports entry counts and the newest critical event's time stamp instead.
No password appears in any metric, label, log line or error page.

--listen takes an IP address and port, never a name: rmm does not use DNS.
SIGINT or SIGTERM stops the server gracefully. See docs/monitoring.md for a
scrape configuration.`,
		Example: `  rmm exporter
  rmm exporter site=ams --listen 10.1.0.5:9790 --max-concurrent 32
  rmm exporter --print-file-sd @db > /etc/prometheus/rmm-db.json
  curl 'http://127.0.0.1:9790/probe?target=db1'`,
		Args:              cobra.ArbitraryArgs,
		ValidArgsFunction: completeSelector(env, g),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.selector = args
			return exporterRun(cmd.Context(), o)
		},
	}
	cmd.Flags().StringVar(&o.listen, "listen", defaultExporterListen, "IP address and port to serve on (no host names)")
	cmd.Flags().DurationVar(&o.timeout, "timeout", 10*time.Second, "longest a probe may talk to a BMC (Prometheus's scrape timeout may shorten it)")
	cmd.Flags().IntVar(&o.maxConcurrent, "max-concurrent", 64, "probes talking to BMCs at once, across all targets")
	cmd.Flags().BoolVar(&o.printFileSD, "print-file-sd", false, "print a Prometheus file_sd target list for the selected hosts and exit")
	return cmd
}

// parseListen accepts an IP literal and port only.
func parseListen(s string) (netip.AddrPort, error) {
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		return netip.AddrPort{}, usageErrorf("--listen %q: want an IP address and port such as 127.0.0.1:9790 or [::1]:9790; rmm never uses DNS, so host names are refused", s)
	}
	return ap, nil
}

func exporterRun(ctx context.Context, o *exporterOptions) error {
	if o.maxConcurrent < 1 {
		return usageErrorf("--max-concurrent must be at least 1, got %d", o.maxConcurrent)
	}
	if o.timeout <= 0 {
		return usageErrorf("--timeout must be positive, got %s", o.timeout)
	}
	ap, err := parseListen(o.listen)
	if err != nil && !o.printFileSD {
		return err
	}
	inv, err := loadInventory(o.env, o.g)
	if err != nil {
		return err
	}
	sel := orAll(o.selector)
	hosts, err := selectHosts(inv, sel)
	if err != nil {
		return err
	}
	if o.printFileSD {
		return writeFileSD(o.env.IO.Out, hosts)
	}
	f, err := newFleet(o.env, inv)
	if err != nil {
		return err
	}
	ln := o.listener
	if ln == nil {
		ln, err = net.ListenTCP("tcp", net.TCPAddrFromAddrPort(ap))
		if err != nil {
			return fmt.Errorf("exporter: listen on %s: %w", ap, err)
		}
	}
	e := newExporter(o, f, hosts)
	srv := &http.Server{
		Handler:           e.mux(),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		// Probes run under the server's context: SIGTERM cancels them, and
		// they close their sessions before Shutdown returns.
		BaseContext: func(net.Listener) context.Context { return ctx },
		ErrorLog:    log.New(o.env.IO.ErrOut, "rmm exporter: ", 0),
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	fmt.Fprintf(o.env.IO.ErrOut, "exporter: serving %d hosts on http://%s (/probe?target=HOST, /metrics); Ctrl-C stops\n", len(hosts), ln.Addr())
	if o.ready != nil {
		o.ready(ln.Addr())
	}
	select {
	case err := <-served:
		return fmt.Errorf("exporter: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
	defer cancel()
	err = srv.Shutdown(sctx)
	<-served
	fmt.Fprintf(o.env.IO.ErrOut, "exporter: stopped\n")
	if err != nil {
		return fmt.Errorf("exporter: shutdown: %w", err)
	}
	return nil
}

// exporter serves probes for a fixed set of inventory hosts.
type exporter struct {
	o     *exporterOptions
	f     *fleet
	hosts map[string]*inventory.Host
	// busy holds one slot per host; sem the --max-concurrent slots.
	busy   map[string]chan struct{}
	sem    chan struct{}
	scrub  func(string) string
	errLog io.Writer

	reg      *prometheus.Registry
	probes   *prometheus.CounterVec
	duration prometheus.Histogram
	inFlight prometheus.Gauge
}

func newExporter(o *exporterOptions, f *fleet, hosts []*inventory.Host) *exporter {
	e := &exporter{
		o: o, f: f, hosts: make(map[string]*inventory.Host, len(hosts)), busy: make(map[string]chan struct{}, len(hosts)),
		sem: make(chan struct{}, o.maxConcurrent), scrub: newStringScrubber(o.env.IO.Scrub).scrub,
		errLog: o.env.IO.ErrOut,
		reg:    prometheus.NewRegistry(),
		probes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rmm_exporter_probes_total",
			Help: "Probes answered, by result: the host's state (ok, warning, critical, unknown), bad_target (400) or overloaded (503).",
		}, []string{"result"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "rmm_exporter_probe_duration_seconds",
			Help:    "Time to answer a probe, waiting for a free slot included.",
			Buckets: []float64{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30},
		}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "rmm_exporter_probes_in_flight",
			Help: "Probes talking to BMCs now (at most --max-concurrent).",
		}),
	}
	for _, h := range hosts {
		e.hosts[h.Name] = h
		e.busy[h.Name] = make(chan struct{}, 1)
	}
	for _, r := range []string{"ok", "warning", "critical", "unknown", "bad_target", "overloaded"} {
		e.probes.WithLabelValues(r)
	}
	e.reg.MustRegister(e.probes, e.duration, e.inFlight,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "rmm_exporter_max_concurrent",
			Help: "The --max-concurrent limit.",
		}, func() float64 { return float64(cap(e.sem)) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "rmm_exporter_targets",
			Help: "Inventory hosts this exporter may probe.",
		}, func() float64 { return float64(len(e.hosts)) }),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return e
}

func (e *exporter) mux() *http.ServeMux {
	m := http.NewServeMux()
	m.HandleFunc("GET /probe", e.probe)
	m.Handle("GET /metrics", promhttp.HandlerFor(e.reg, promhttp.HandlerOpts{}))
	m.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, "<html><head><title>rmm exporter</title></head><body><h1>rmm exporter</h1>"+
			"<p><a href=\"/metrics\">/metrics</a>: the exporter's own metrics.</p>"+
			"<p>/probe?target=HOST: one inventory host's BMC health (%d hosts served).</p></body></html>\n", len(e.hosts))
	})
	return m
}

// hostNameRe is what an inventory host name looks like; anything else is
// not echoed back in an error page.
var hostNameRe = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,252}$`)

func (e *exporter) probe(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	defer func() { e.duration.Observe(time.Since(start).Seconds()) }()
	target := r.URL.Query().Get("target")
	h, ok := e.hosts[target]
	if !ok {
		e.probes.WithLabelValues("bad_target").Inc()
		msg := "missing target parameter: /probe?target=HOST, HOST a host name from the inventory"
		_, errAddr := netip.ParseAddr(strings.Trim(target, "[]"))
		_, errAddrPort := netip.ParseAddrPort(target)
		switch {
		case target == "":
		case errAddr == nil || errAddrPort == nil || !hostNameRe.MatchString(target):
			msg = "target is not a host name: the exporter probes inventory host names, never addresses"
		default:
			msg = fmt.Sprintf("unknown target %q: not a host this exporter serves (its inventory and selector)", target)
		}
		http.Error(w, msg, http.StatusBadRequest)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), e.budget(r))
	defer cancel()
	// One probe per BMC at a time (two Prometheus replicas scrape every
	// target: IPMI BMCs cancel each other's SDR reservations and have few
	// session slots), then one of --max-concurrent slots.
	busy := e.busy[h.Name]
	select {
	case busy <- struct{}{}:
		defer func() { <-busy }()
	case <-ctx.Done():
		e.probes.WithLabelValues("overloaded").Inc()
		http.Error(w, "another probe of this host did not finish before the scrape deadline", http.StatusServiceUnavailable)
		return
	}
	select {
	case e.sem <- struct{}{}:
	case <-ctx.Done():
		e.probes.WithLabelValues("overloaded").Inc()
		http.Error(w, fmt.Sprintf("no free probe slot before the scrape deadline (--max-concurrent %d)", cap(e.sem)), http.StatusServiceUnavailable)
		return
	}
	hh := func() hostHealth {
		e.inFlight.Inc()
		defer func() { e.inFlight.Dec(); <-e.sem }()
		return checkHost(ctx, e.f, h)
	}()
	if hh.selErr != nil {
		hh.addSorted(checkSEL, stateUnknown, "cannot read: "+shortErr(hh.selErr))
		hh.settle()
	}
	e.probes.WithLabelValues(strings.ToLower(hh.Status.String())).Inc()

	if r.URL.Query().Get("debug") == "true" {
		// What went wrong, for a person: the checks and errors as JSON,
		// through the scrubber like everything else.
		var buf bytes.Buffer
		_ = writeJSON(&buf, hh)
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, e.scrub(buf.String()))
		return
	}
	reg := prometheus.NewRegistry()
	m := newBMCMetrics(reg, false, e.scrub)
	m.observe(&hh)
	promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorLog: log.New(e.errLog, "rmm exporter: probe "+h.Name+": ", 0)}).ServeHTTP(w, r)
}

// budget is a probe's deadline: Prometheus's scrape timeout less a margin,
// at most --timeout.
func (e *exporter) budget(r *http.Request) time.Duration {
	d := e.o.timeout
	if v := r.Header.Get("X-Prometheus-Scrape-Timeout-Seconds"); v != "" {
		if secs, err := strconv.ParseFloat(v, 64); err == nil && secs > 0 && secs < 3600 {
			st := time.Duration(secs * float64(time.Second))
			if st > 2*scrapeTimeoutMargin {
				st -= scrapeTimeoutMargin
			} else {
				st = st * 3 / 4
			}
			d = min(d, st)
		}
	}
	return d
}

// bmcMetrics are the per-host metrics rmm health writes for the textfile
// collector and the exporter answers a probe with. Every name and label is
// documented in docs/monitoring.md.
type bmcMetrics struct {
	up, status, check, info, power, duration *prometheus.GaugeVec
	sensorState, sensorValue, rollup         *prometheus.GaugeVec
	selEntries, selCritical, selLatest       *prometheus.GaugeVec
	selNewTotal                              *prometheus.CounterVec // rmm health only
	scrub                                    func(string) string
}

func newBMCMetrics(reg prometheus.Registerer, withState bool, scrub func(string) string) *bmcMetrics {
	g := func(name, help string, labels ...string) *prometheus.GaugeVec {
		v := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: help}, labels)
		reg.MustRegister(v)
		return v
	}
	m := &bmcMetrics{
		scrub:    scrub,
		up:       g("rmm_bmc_up", "1 when rmm opened a session to the host's BMC, else 0.", "host"),
		status:   g("rmm_bmc_status", "The host's state, its worst check: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN (Nagios codes; WARNING and CRITICAL outrank UNKNOWN).", "host"),
		check:    g("rmm_bmc_health_status", "Each check's state: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN. Checks: reachable, auth, tls, identity, power, sel, sensors, rollup; a check that was not reached is absent.", "host", "check"),
		info:     g("rmm_bmc_info", "The BMC as it describes itself; always 1.", "host", "bmc", "protocol", "vendor", "model", "firmware"),
		power:    g("rmm_bmc_power_on", "1 when the chassis power is on, 0 when it is off or changing.", "host"),
		duration: g("rmm_bmc_check_duration_seconds", "Time the host's checks took.", "host"),
		sensorState: g("rmm_sensor_state", "Each sensor's state as the BMC rates it: 0 ok, 1 warning, 2 critical.",
			"host", "sensor", "kind"),
		sensorValue: g("rmm_sensor_value", "Each sensor's reading, in its unit.", "host", "sensor", "kind", "unit"),
		rollup: g("rmm_bmc_rollup_state", "The BMC's own summary health (Redfish System/Chassis HealthRollup, IPMI chassis faults): 0 ok, 1 warning, 2 critical.",
			"host", "rollup"),
		selEntries:  g("rmm_sel_entries", "Records in the System Event Log.", "host"),
		selCritical: g("rmm_sel_critical_entries", "Critical records in the System Event Log.", "host"),
		selLatest:   g("rmm_sel_latest_critical_timestamp_seconds", "Time stamp of the newest critical SEL record (absent when there is none).", "host"),
	}
	if withState {
		m.selNewTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rmm_sel_critical_new_total",
			Help: "Critical SEL records rmm health has reported as new for the host, since its state file began.",
		}, []string{"host"})
		reg.MustRegister(m.selNewTotal)
	}
	return m
}

// lv makes a label value from what a BMC reported: valid UTF-8, bounded,
// and without any password rmm knows.
func (m *bmcMetrics) lv(s string) string {
	s = strings.ToValidUTF8(s, "?")
	if len(s) > 128 {
		s = s[:128]
		for !utf8.ValidString(s) {
			s = s[:len(s)-1]
		}
	}
	return m.scrub(s)
}

func sevValue(s string) float64 {
	switch s {
	case "critical":
		return 2
	case "warning":
		return 1
	}
	return 0
}

// observe records one host's report.
func (m *bmcMetrics) observe(h *hostHealth) {
	host := m.lv(h.Host)
	up := 0.0
	if h.Up {
		up = 1
	}
	m.up.WithLabelValues(host).Set(up)
	m.status.WithLabelValues(host).Set(float64(h.Status))
	m.duration.WithLabelValues(host).Set(float64(h.DurationMS) / 1000)
	for _, c := range h.Checks {
		m.check.WithLabelValues(host, c.Check).Set(float64(c.Status))
	}
	if h.Up {
		var vendor, model, fw string
		if h.Identity != nil {
			vendor, model, fw = h.Identity.Vendor, h.Identity.Model, h.Identity.Firmware
		}
		m.info.WithLabelValues(host, h.BMC, h.Protocol, m.lv(vendor), m.lv(model), m.lv(fw)).Set(1)
	}
	switch h.Power {
	case "":
	case "on":
		m.power.WithLabelValues(host).Set(1)
	default:
		m.power.WithLabelValues(host).Set(0)
	}
	names := map[string]int{}
	unique := func(kind, name string) string {
		k := kind + "\x00" + name
		names[k]++
		if n := names[k]; n > 1 {
			return fmt.Sprintf("%s #%d", name, n)
		}
		return name
	}
	for _, s := range h.Sensors {
		name := unique(s.Kind, m.lv(s.Name))
		m.sensorState.WithLabelValues(host, name, m.lv(s.Kind)).Set(sevValue(string(s.Severity)))
		if s.Reading != nil {
			m.sensorValue.WithLabelValues(host, name, m.lv(s.Kind), m.lv(s.Unit)).Set(*s.Reading)
		}
	}
	for _, r := range h.Rollups {
		m.rollup.WithLabelValues(host, unique("rollup", m.lv(r.Name))).Set(sevValue(string(r.Severity)))
	}
	if h.SEL != nil {
		if h.SEL.Read {
			m.selEntries.WithLabelValues(host).Set(float64(h.SEL.Entries))
			m.selCritical.WithLabelValues(host).Set(float64(h.SEL.Critical))
			if h.SEL.LatestCritical != nil {
				m.selLatest.WithLabelValues(host).Set(float64(h.SEL.LatestCritical.Unix()))
			}
		}
		if m.selNewTotal != nil {
			m.selNewTotal.WithLabelValues(host).Add(float64(h.SEL.NewCriticalTotal))
		}
	}
}

// writeHealthMetrics writes rmm health's report in the Prometheus text
// format, with run-level metrics for staleness alerts.
func writeHealthMetrics(w io.Writer, env *Env, rep *healthReport, started time.Time) error {
	reg := prometheus.NewRegistry()
	m := newBMCMetrics(reg, true, newStringScrubber(env.IO.Scrub).scrub)
	for i := range rep.Hosts {
		m.observe(&rep.Hosts[i])
	}
	last := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "rmm_health_last_run_timestamp_seconds",
		Help: "When this rmm health run started: alert when it is older than a few cron intervals.",
	})
	last.Set(float64(started.Unix()))
	dur := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "rmm_health_run_duration_seconds",
		Help: "How long this rmm health run took.",
	})
	dur.Set(env.now().Sub(started).Seconds())
	hosts := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "rmm_health_hosts",
		Help: "Hosts checked, by state.",
	}, []string{"status"})
	s := rep.Summary
	for st, n := range map[string]int{"OK": s.OK, "WARNING": s.Warning, "CRITICAL": s.Critical, "UNKNOWN": s.Unknown} {
		hosts.WithLabelValues(st).Set(float64(n))
	}
	reg.MustRegister(last, dur, hosts)
	mfs, err := reg.Gather()
	if err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	enc := expfmt.NewEncoder(w, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, mf := range mfs {
		if err := enc.Encode(mf); err != nil {
			return fmt.Errorf("metrics: %w", err)
		}
	}
	return nil
}

// stringScrubber removes known passwords from strings. Scrubbers.Wrap
// registers each writer for the life of the process, so a command makes
// one and reuses it (serialised), never one per string.
type stringScrubber struct {
	mu  sync.Mutex
	buf bytes.Buffer
	sc  *secret.Scrubber
}

func newStringScrubber(s *secret.Scrubbers) *stringScrubber {
	ss := &stringScrubber{}
	if s != nil {
		ss.sc = s.Wrap(&ss.buf)
	}
	return ss
}

func (s *stringScrubber) scrub(v string) string {
	if s.sc == nil {
		return v
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.buf.Reset()
	_, _ = s.sc.Write([]byte(v))
	_ = s.sc.Flush()
	return s.buf.String()
}

// fileSDGroup is one entry of a Prometheus file_sd file.
type fileSDGroup struct {
	Targets []string          `json:"targets"`
	Labels  map[string]string `json:"labels"`
}

// labelNameRe is a valid Prometheus label name.
var labelNameRe = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)

// writeFileSD prints one target group per host: the host name as the
// target (the exporter resolves it through the inventory), its groups as
// rmm_groups (",db,prod,", for regex matches in relabel rules), its BMC
// address as rmm_bmc, and its inventory labels. Label names Prometheus
// would not accept are rewritten (invalid characters to "_"); names it
// reserves (job, instance, __*) get an "inventory_" prefix.
func writeFileSD(w io.Writer, hosts []*inventory.Host) error {
	groups := make([]fileSDGroup, 0, len(hosts))
	for _, h := range hosts {
		labels := map[string]string{"rmm_bmc": h.Addr.String()}
		if len(h.Groups) > 0 {
			labels["rmm_groups"] = "," + strings.Join(h.Groups, ",") + ","
		}
		keys := make([]string, 0, len(h.Labels))
		for k := range h.Labels {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			labels[promLabelName(k)] = h.Labels[k]
		}
		groups = append(groups, fileSDGroup{Targets: []string{h.Name}, Labels: labels})
	}
	return writeJSON(w, groups)
}

func promLabelName(k string) string {
	if !labelNameRe.MatchString(k) {
		b := []byte(k)
		for i, c := range b {
			if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && c >= '0' && c <= '9') {
				b[i] = '_'
			}
		}
		k = string(b)
	}
	if strings.HasPrefix(k, "__") || slices.Contains([]string{"job", "instance", "rmm_bmc", "rmm_groups"}, k) {
		k = "inventory_" + k
	}
	return k
}
