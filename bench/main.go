// Command bench is `make bench`: rmm against FreeIPMI's ipmipower and a
// loop of ipmitool on simulated fleets of IPMI BMCs on loopback, plus the
// floor (go-ipmi's client in a plain loop), and writes BENCHMARKS.md.
//
// Every number in BENCHMARKS.md comes from the run that wrote it; the
// hand-written notes (notes.md) are a template that reads them too.
//
// Usage: go run ./bench -rmm bin/rmm -out BENCHMARKS.md
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/rmm-project/rmm/sim"
)

// config is the bench's flags.
type config struct {
	rmm, out      string
	runs          int           // timed runs of the fast clients per scenario
	ipmitoolRuns  int           // ipmitool loop runs at 200 BMCs
	ipmitoolBig   int           // ipmitool loop runs at 1,000 BMCs (a minute each)
	singleRuns    int           // runs of the single-host path
	listRuns      int           // runs of rmm list
	profileRuns   int           // profiled rmm runs merged into the profile
	timeout       time.Duration // per-host timeout in the dead scenarios
	sizes         []int
	keep, verbose bool
	deadHeavy     bool // also a fleet with 20% dead (more than -j)
}

func main() {
	// The floor's child mode: the bench binary re-executed.
	if len(os.Args) > 1 && os.Args[1] == "-floor-child" {
		os.Exit(floorMain(os.Args[2:]))
	}
	os.Exit(run())
}

func floorMain(args []string) int {
	fs := flag.NewFlagSet("floor", flag.ContinueOnError)
	ips := fs.String("ips", "", "file of BMC IPs")
	port := fs.Int("port", 623, "IPMI port")
	suite := fs.Int("suite", 17, "cipher suite")
	prof := fs.String("cpuprofile", "", "write a CPU profile here")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *prof != "" {
		f, err := os.Create(*prof)
		if err != nil {
			fmt.Fprintf(os.Stderr, "floor: %v\n", err)
			return 1
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintf(os.Stderr, "floor: %v\n", err)
			return 1
		}
		defer func() { pprof.StopCPUProfile(); f.Close() }()
	}
	if err := floorChild(*ips, *port, *suite, os.Stdout); err != nil {
		fmt.Fprintf(os.Stderr, "floor: %v\n", err)
		return 1
	}
	return 0
}

func run() int {
	var c config
	sizes := "200,1000"
	flag.StringVar(&c.rmm, "rmm", "bin/rmm", "the rmm binary to measure (make bench builds it)")
	flag.StringVar(&c.out, "out", "BENCHMARKS.md", "where to write the report")
	flag.IntVar(&c.runs, "runs", 5, "timed runs per scenario of rmm, ipmipower and the floor")
	flag.IntVar(&c.ipmitoolRuns, "ipmitool-runs", 3, "timed runs of the ipmitool loop at 200 BMCs")
	flag.IntVar(&c.ipmitoolBig, "ipmitool-runs-1000", 1, "timed runs of the ipmitool loop at 1,000 BMCs (about a minute each; 0 skips it)")
	flag.IntVar(&c.singleRuns, "single-runs", 15, "timed runs of the single-host path")
	flag.IntVar(&c.listRuns, "list-runs", 10, "timed runs of each rmm list case")
	flag.IntVar(&c.profileRuns, "profile-runs", 10, "profiled rmm runs on 1,000 BMCs (merged; not timed)")
	flag.DurationVar(&c.timeout, "timeout", 2*time.Second, "the per-host timeout every client gets in the dead-BMC scenarios")
	flag.StringVar(&sizes, "sizes", sizes, "fleet sizes (comma list)")
	flag.BoolVar(&c.deadHeavy, "dead20", true, "also time rmm and ipmipower on the largest fleet with 20% dead")
	flag.BoolVar(&c.keep, "keep", false, "keep the work directory (inventories, profiles, logs)")
	flag.BoolVar(&c.verbose, "v", true, "print every run on stderr")
	flag.Parse()
	for _, s := range strings.Split(sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 || n > 20000 {
			fmt.Fprintf(os.Stderr, "bench: bad -sizes entry %q\n", s)
			return 2
		}
		c.sizes = append(c.sizes, n)
	}
	if c.timeout < 500*time.Millisecond || c.timeout%time.Millisecond != 0 {
		fmt.Fprintf(os.Stderr, "bench: -timeout must be whole milliseconds, at least 500ms\n")
		return 2
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()
	b, err := newBench(c)
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		return 1
	}
	defer b.cleanup()
	err = b.all(ctx)
	if ctx.Err() != nil {
		fmt.Fprintf(os.Stderr, "bench: interrupted; simulator and clients stopped, nothing written\n")
		return 130
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		return 1
	}
	return 0
}

// bench holds one run's state.
type bench struct {
	cfg      config
	rmm      string // absolute
	self     string // this binary, for the floor child
	dir      string // work directory
	port     uint16
	fiConf   string // FreeIPMI config file with the credentials
	tools    map[string]string
	machine  machine
	hasAudit bool

	scenarios []*scenario
	profiles  map[string]profileReport // "rmm", "floor", "list"
	sim       *simProc
}

// scenario is one row group of the table.
type scenario struct {
	Key     string // stable id used by targets and notes
	Alias   string // "status-big" etc. for the biggest fleet, for the notes
	Title   string
	N       int    // hosts in the fleet
	Flags   string // how the per-host timeout was set, when it was
	Cells   []*cell
	Comment string
}

func newBench(c config) (*bench, error) {
	b := &bench{cfg: c, tools: map[string]string{}, profiles: map[string]profileReport{}}
	var err error
	if b.rmm, err = filepath.Abs(c.rmm); err != nil {
		return nil, err
	}
	if st, err := os.Stat(b.rmm); err != nil || st.IsDir() {
		return nil, fmt.Errorf("no rmm binary at %s (run make build, or make bench)", c.rmm)
	}
	if b.self, err = os.Executable(); err != nil {
		return nil, err
	}
	for _, t := range []string{"ipmipower", "ipmitool", "xargs"} {
		p, err := exec.LookPath(t)
		if err != nil {
			return nil, fmt.Errorf("%s not found: run make deps (Debian: freeipmi-tools, ipmitool, findutils)", t)
		}
		b.tools[t] = p
	}
	if b.dir, err = os.MkdirTemp("", "rmm-bench-"); err != nil {
		return nil, err
	}
	for _, d := range []string{"home", "state"} {
		if err := os.Mkdir(filepath.Join(b.dir, d), 0o700); err != nil {
			return nil, err
		}
	}
	b.port = sim.DefaultIPMIPort()
	b.fiConf = filepath.Join(b.dir, "freeipmi.conf")
	if err := os.WriteFile(b.fiConf, []byte("username "+benchUser+"\npassword "+benchPassword+"\n"), 0o600); err != nil {
		return nil, err
	}
	return b, nil
}

func (b *bench) cleanup() {
	if b.sim != nil {
		b.sim.stop()
		b.sim = nil
	}
	if b.cfg.keep {
		fmt.Fprintf(os.Stderr, "bench: work directory kept: %s\n", b.dir)
		return
	}
	_ = os.RemoveAll(b.dir)
}

func (b *bench) logf(format string, args ...any) {
	if b.cfg.verbose {
		fmt.Fprintf(os.Stderr, format+"\n", args...)
	}
}

// env is the environment every client runs with: a private HOME and state
// directory (no journal, known_bmcs or FreeIPMI cache of the user's is
// read or written), the password for rmm and the simulator, and for
// ipmitool -E.
func (b *bench) env(extra ...string) []string {
	e := []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + filepath.Join(b.dir, "home"),
		"XDG_STATE_HOME=" + filepath.Join(b.dir, "state"),
		"RMM_AUDIT_LOG=" + filepath.Join(b.dir, "state", "audit.log"),
		"RMM_NO_SYSLOG=1",
		"LANG=C",
		passwordEnv + "=" + benchPassword,
	}
	return append(e, extra...)
}

// all runs every scenario and writes the report.
func (b *bench) all(ctx context.Context) error {
	start := time.Now()
	b.machine = describeMachine(b.rmm, b.tools)
	b.logf("bench: %s, %d cores; simulated BMCs on UDP port %d; work dir %s", b.machine.CPU, b.machine.Cores, b.port, b.dir)
	out, _ := exec.Command(b.rmm, "help").Output()
	b.hasAudit = strings.Contains(string(out), "\n  audit ")
	if !b.hasAudit {
		b.logf("bench: rmm has no audit command yet; the audit rows are skipped")
	}

	// A fresh /16 per fleet: 127.1.0.0/16 and up.
	block := byte(1)
	for _, n := range b.cfg.sizes {
		for _, every := range []int{0, 20} {
			if err := b.fleet(ctx, n, every, netip.AddrFrom4([4]byte{127, block, 0, 1})); err != nil {
				return err
			}
			block++
		}
	}
	// A rack or site down: more dead BMCs than rmm's -j.
	if b.cfg.deadHeavy {
		if err := b.fleet(ctx, b.big(), 5, netip.AddrFrom4([4]byte{127, block, 0, 1})); err != nil {
			return err
		}
	}
	if err := b.list(ctx); err != nil {
		return err
	}
	b.machine.LoadEnd = loadavg()
	b.machine.Duration = time.Since(start)
	return b.write()
}

// big is the largest fleet size: the one the targets are judged on.
func (b *bench) big() int { return slices.Max(b.cfg.sizes) }

func label(n int, deadEvery int) string {
	s := fmt.Sprintf("%s BMCs", thousands(n))
	if deadEvery > 0 {
		s += fmt.Sprintf(", %d%% dead", 100/deadEvery)
	}
	return s
}

// fleet starts one simulated fleet, runs its scenarios, and stops it.
func (b *bench) fleet(ctx context.Context, n int, deadEvery int, base netip.Addr) error {
	dead := deadEvery > 0
	heavy := dead && deadEvery != 20 // the extra fleet: rmm and ipmipower only
	f, err := newFleetSpec(b.dir, label(n, deadEvery), base, n, deadEvery, b.port)
	if err != nil {
		return err
	}
	b.logf("bench: starting %s on %s...", f.Label, base)
	b.sim, err = startSim(ctx, b.rmm, f, b.dir, b.env())
	if err != nil {
		return err
	}
	defer func() { b.sim.stop(); b.sim = nil }()
	r := &runner{dir: b.dir, sim: b.sim, log: b.logf}

	// Warm-up: one host per client, so the first timed run does not pay
	// for cold binaries and page cache.
	first := f.Hosts[0]
	warm := []job{b.rmmJob(f, 0, "power", "status", first.Name), b.ipmipowerJob(f, 0, first.Addr), b.ipmitoolOne(f, 0, first.Addr)}
	for _, j := range warm {
		j.Want = 0
		r.run(ctx, j)
	}

	timeout := time.Duration(0)
	if dead {
		timeout = b.cfg.timeout
	}
	sc := &scenario{Key: fmt.Sprintf("status-%d", n), Title: "power status, " + f.Label, N: n}
	if n == b.big() {
		sc.Alias = "status-big"
	}
	if dead {
		suffix := "-dead"
		if heavy {
			suffix = fmt.Sprintf("-dead%d", 100/deadEvery)
		}
		sc.Key += suffix
		sc.Alias += suffix
		sc.Flags = b.timeoutFlags()
	}
	itRuns := b.cfg.ipmitoolRuns
	if n >= 1000 {
		itRuns = b.cfg.ipmitoolBig
	}
	sc.Cells = []*cell{
		{Job: b.rmmJob(f, timeout, "power", "status", "all")},
		{Job: b.ipmipowerJob(f, timeout, f.addrs()...)},
	}
	if itRuns > 0 && !heavy {
		sc.Cells = append(sc.Cells, &cell{Job: b.ipmitoolLoop(f, timeout, itRuns)})
	}
	if !dead {
		sc.Cells = append(sc.Cells, &cell{Job: b.floorJob(f)})
	}
	for _, c := range sc.Cells {
		c.Scenario = sc.Title
	}
	b.scenarios = append(b.scenarios, sc)
	if err := r.rounds(ctx, sc.Cells); err != nil {
		return err
	}

	if n == b.big() && !heavy {
		if !dead {
			if err := b.single(ctx, r, f); err != nil {
				return err
			}
			if err := b.variants(ctx, r, f); err != nil {
				return err
			}
			if err := b.profileRMM(ctx, r, f); err != nil {
				return err
			}
		} else {
			if err := b.deadOne(ctx, r, f); err != nil {
				return err
			}
		}
		if b.hasAudit {
			if err := b.audit(ctx, r, f); err != nil {
				return err
			}
		}
	}
	return nil
}

// timeoutFlags says how each client was given the per-host timeout.
func (b *bench) timeoutFlags() string {
	ms := b.cfg.timeout.Milliseconds()
	return fmt.Sprintf("rmm `--timeout %s`; ipmipower `--session-timeout=%d --retransmission-timeout=%d`; ipmitool `-N %d -R 1`",
		b.cfg.timeout, ms, ms/4, ipmitoolTimeout(b.cfg.timeout))
}

// ipmitoolTimeout is ipmitool's -N for a per-host timeout. With -R 1,
// ipmitool 1.8.19 sends Get Channel Authentication Capabilities twice and
// waits -N seconds after each (seen with -vv): a dead BMC costs it 2 x N.
// The "one dead BMC" row measures what each client really spends.
func ipmitoolTimeout(d time.Duration) int {
	return max(1, int(d.Round(time.Second)/time.Second)/2)
}

func (b *bench) rmmJob(f *fleetSpec, timeout time.Duration, args ...string) job {
	argv := append([]string{b.rmm, "-i", f.Inventory}, args...)
	if timeout > 0 {
		argv = append(argv, "--timeout", timeout.String())
	}
	want := f.Healthy()
	if len(args) >= 3 && args[2] != "all" { // one host by name
		want = 1
	}
	return job{Client: "rmm", Argv: argv, Env: b.env(), Want: want, Count: countLines(rmmPowerRow), Limit: 2 * time.Minute, Runs: b.cfg.runs}
}

func (b *bench) ipmipowerJob(f *fleetSpec, timeout time.Duration, addrs ...netip.Addr) job {
	argv := []string{b.tools["ipmipower"], "-D", "LAN_2_0", "--config-file", b.fiConf, "-h", hostList(f.Port, addrs...), "--stat"}
	if timeout > 0 {
		ms := timeout.Milliseconds()
		argv = append(argv, fmt.Sprintf("--session-timeout=%d", ms), fmt.Sprintf("--retransmission-timeout=%d", ms/4))
	}
	want := 0
	for _, a := range addrs {
		for _, h := range f.Hosts {
			if h.Addr == a && !h.Dead {
				want++
			}
		}
	}
	return job{Client: "ipmipower", Argv: argv, Env: b.env(), Want: want, Count: countLines(ipmipowerRow), Limit: 2 * time.Minute, Runs: b.cfg.runs}
}

func (b *bench) ipmitoolArgs(f *fleetSpec, timeout time.Duration) []string {
	args := []string{"-I", "lanplus", "-C", "3", "-U", benchUser, "-E", "-p", strconv.Itoa(int(f.Port))}
	if timeout > 0 {
		args = append(args, "-N", strconv.Itoa(ipmitoolTimeout(timeout)), "-R", "1")
	}
	return args
}

// ipmitoolLoop is one ipmitool per BMC, 16 at a time, under xargs.
func (b *bench) ipmitoolLoop(f *fleetSpec, timeout time.Duration, runs int) job {
	argv := append([]string{b.tools["xargs"], "-P", "16", "-a", f.IPFile, "-I", "{}", b.tools["ipmitool"]}, b.ipmitoolArgs(f, timeout)...)
	argv = append(argv, "-H", "{}", "chassis", "power", "status")
	return job{Client: "ipmitool", Argv: argv, Env: b.env("IPMI_PASSWORD=" + benchPassword), Want: f.Healthy(),
		Count: countLines(ipmitoolRow), Limit: 10 * time.Minute, Runs: runs}
}

// ipmitoolOne is a single ipmitool call.
func (b *bench) ipmitoolOne(f *fleetSpec, timeout time.Duration, addr netip.Addr) job {
	argv := append([]string{b.tools["ipmitool"]}, b.ipmitoolArgs(f, timeout)...)
	argv = append(argv, "-H", addr.String(), "chassis", "power", "status")
	return job{Client: "ipmitool (one call)", Argv: argv, Env: b.env("IPMI_PASSWORD=" + benchPassword), Want: 1,
		Count: countLines(ipmitoolRow), Limit: time.Minute, Runs: b.cfg.singleRuns}
}

func (b *bench) floorJob(f *fleetSpec) job {
	argv := []string{b.self, "-floor-child", "-ips", f.IPFile, "-port", strconv.Itoa(int(f.Port)), "-suite", "17"}
	return job{Client: "floor", Argv: argv, Env: b.env(), Want: f.Healthy(), Count: floorCount, Inner: floorInner,
		Limit: 2 * time.Minute, Runs: b.cfg.runs}
}

// single is the on-call path: one host by name, from the big inventory.
func (b *bench) single(ctx context.Context, r *runner, f *fleetSpec) error {
	h := f.Hosts[0]
	sc := &scenario{Key: "single", Title: fmt.Sprintf("single host (%s, inventory of %s)", h.Name, thousands(f.N))}
	// Where rmm's time goes on this path: start-up alone (rmm help), then
	// start-up and the inventory (rmm list db1), then the session.
	startup := job{Client: "rmm help (start-up only)", Argv: []string{b.rmm, "help"}, Env: b.env(), Limit: time.Minute}
	inv := job{Client: "rmm list " + h.Name + " (start-up + inventory)", Argv: []string{b.rmm, "-i", f.Inventory, "list", h.Name},
		Env: b.env(), Want: 1, Count: countLines(func(l string) bool { return strings.HasPrefix(l, h.Name+" ") }), Limit: time.Minute}
	sc.Cells = []*cell{
		{Job: b.rmmJob(f, 0, "power", "status", h.Name)},
		{Job: b.ipmipowerJob(f, 0, h.Addr)},
		{Job: b.ipmitoolOne(f, 0, h.Addr)},
		{Job: startup},
		{Job: inv},
	}
	for _, c := range sc.Cells {
		c.Scenario = sc.Title
		c.Job.Runs = b.cfg.singleRuns
	}
	b.scenarios = append(b.scenarios, sc)
	return r.rounds(ctx, sc.Cells)
}

// variants times rmm power status with its knobs turned, against the
// defaults, interleaved: the fan-out width and the garbage collector
// setting main applies (GOGC=100 in the environment restores the runtime's
// default).
func (b *bench) variants(ctx context.Context, r *runner, f *fleetSpec) error {
	sc := &scenario{Key: "variants", Title: fmt.Sprintf("rmm power status variants, %s BMCs", thousands(f.N)), N: f.N}
	add := func(name string, env []string, args ...string) {
		j := b.rmmJob(f, 0, append([]string{"power", "status", "all"}, args...)...)
		j.Client = name
		j.Env = append(j.Env, env...)
		j.EnvNote = strings.Join(env, " ")
		sc.Cells = append(sc.Cells, &cell{Scenario: sc.Title, Job: j})
	}
	add("rmm (defaults: -j 64)", nil)
	add("rmm -j 16", nil, "-j", "16")
	add("rmm -j 256", nil, "-j", "256")
	add("rmm -j 1000 (every host at once)", nil, "-j", "1000")
	add("rmm, GOGC=100 (runtime default GC)", []string{"GOGC=100"})
	b.scenarios = append(b.scenarios, sc)
	return r.rounds(ctx, sc.Cells)
}

// deadOne measures what one dead BMC costs each client with the timeout
// flags: the per-host timeout each tool really applies.
func (b *bench) deadOne(ctx context.Context, r *runner, f *fleetSpec) error {
	h := f.FirstDead()
	sc := &scenario{Key: "dead-one", Title: fmt.Sprintf("one dead BMC (%s)", h.Name), Flags: b.timeoutFlags()}
	sc.Cells = []*cell{
		{Job: b.rmmJob(f, b.cfg.timeout, "power", "status", h.Name)},
		{Job: b.ipmipowerJob(f, b.cfg.timeout, h.Addr)},
		{Job: b.ipmitoolOne(f, b.cfg.timeout, h.Addr)},
	}
	for _, c := range sc.Cells {
		c.Scenario = sc.Title
		c.Job.Want, c.Job.Runs = 0, 2
	}
	b.scenarios = append(b.scenarios, sc)
	return r.rounds(ctx, sc.Cells)
}

// audit times rmm audit on the fleet (when rmm has it).
func (b *bench) audit(ctx context.Context, r *runner, f *fleetSpec) error {
	key, alias := "audit-"+strconv.Itoa(f.N), "audit-big"
	if f.Dead {
		key += "-dead"
		alias += "-dead"
	}
	j := b.rmmJob(f, b.cfg.timeout, "audit", "all")
	j.Count = countLines(auditRow)
	j.Limit = 5 * time.Minute
	sc := &scenario{Key: key, Alias: alias, Title: "rmm audit, " + f.Label, N: f.N, Cells: []*cell{{Job: j}}}
	if f.Dead {
		sc.Flags = fmt.Sprintf("rmm `--timeout %s`", b.cfg.timeout)
	}
	sc.Cells[0].Scenario = sc.Title
	b.scenarios = append(b.scenarios, sc)
	return r.rounds(ctx, sc.Cells)
}

// list times rmm list and selector resolution on a 10,000-host inventory.
func (b *bench) list(ctx context.Context) error {
	const n = 10000
	inv, err := writeListInventory(b.dir, n, netip.AddrFrom4([4]byte{127, 100, 0, 1}))
	if err != nil {
		return err
	}
	r := &runner{dir: b.dir, log: b.logf}
	fraNotR002 := 0
	for i := 0; i < n; i++ {
		if listSite(i) == "fra" && i/listPerRack != 1 {
			fraNotR002++
		}
	}
	cases := []struct {
		sel  []string
		want int
	}{
		{nil, n},
		{[]string{"@r123"}, 40},
		{[]string{"node[05000-05999]"}, 1000},
		{[]string{"site=fra,!@r002"}, fraNotR002},
		{[]string{"node09*"}, 1000},
	}
	sc := &scenario{Key: "list", Title: fmt.Sprintf("rmm list, %s-host inventory", thousands(n))}
	for _, cs := range cases {
		argv := append([]string{b.rmm, "-i", inv, "list"}, cs.sel...)
		want := cs.want
		j := job{Client: "rmm list " + strings.Join(cs.sel, " "), Argv: argv, Env: b.env(), Want: want,
			Count: countLines(func(l string) bool { return strings.HasPrefix(l, "node") }), Limit: time.Minute, Runs: b.cfg.listRuns}
		if len(cs.sel) == 0 {
			j.Client = "rmm list"
		}
		sc.Cells = append(sc.Cells, &cell{Scenario: sc.Title, Job: j})
	}
	b.scenarios = append(b.scenarios, sc)
	// One untimed run to warm the page cache.
	r.run(ctx, sc.Cells[0].Job)
	if err := r.rounds(ctx, sc.Cells); err != nil {
		return err
	}
	return b.profileList(ctx, r, sc.Cells[0].Job, n)
}

// errNoData marks a number that could not be measured.
var errNoData = errors.New("not measured")
