package interop

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rmm-project/rmm/cli"
	"github.com/rmm-project/rmm/sim"
)

// requireInterop is set in CI (make test there): a missing peer is then a
// failure, not a skip.
func requireInterop() bool { return os.Getenv("RMM_REQUIRE_INTEROP") == "1" }

// needTool returns the path of an interop peer. When it is missing the
// test skips with a loud message naming the tool and `make deps`, or fails
// under RMM_REQUIRE_INTEROP=1.
func needTool(t testing.TB, name, pkg string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err == nil {
		return path
	}
	msg := fmt.Sprintf("%s not found (Debian package %s; run `make deps`): this check is NOT run", name, pkg)
	if requireInterop() {
		t.Fatalf("%s, and RMM_REQUIRE_INTEROP=1", msg)
	}
	fmt.Fprintln(os.Stderr, "SKIP:", t.Name()+":", msg)
	t.Skipf("SKIP: %s; set RMM_REQUIRE_INTEROP=1 to make this a failure", msg)
	return ""
}

// needRoot skips, loudly, when not root: network namespaces need
// CAP_SYS_ADMIN. CI runs as root, where anything that then fails is a
// failure.
func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	msg := "not root: network namespaces need root, so this check is NOT run (CI runs it as root)"
	fmt.Fprintln(os.Stderr, "SKIP:", t.Name()+":", msg)
	t.Skip("SKIP: " + msg)
}

// needCommand skips until rmm has the command (others are building some
// of them right now): the test is written and turns itself on when the
// command lands. Under RMM_REQUIRE_INTEROP=1 it still skips, since a
// command that does not exist yet is not a missing dependency.
func needCommand(t *testing.T, name string) {
	t.Helper()
	if hasCommand(name) {
		return
	}
	msg := fmt.Sprintf("`rmm %s` does not exist yet (rmm help does not list it): this check is written but NOT run until it lands", name)
	fmt.Fprintln(os.Stderr, "SKIP:", t.Name()+":", msg)
	t.Skip("SKIP: " + msg)
}

var (
	commandsOnce sync.Once
	commandSet   map[string]bool
)

// hasCommand reports whether `rmm help` lists a command.
func hasCommand(name string) bool {
	commandsOnce.Do(func() {
		var out bytes.Buffer
		cli.Main(context.Background(), []string{"help"}, &cli.Env{IO: cli.Test(nil, &out, &out), Getenv: func(string) string { return "" }})
		commandSet = parseCommands(out.String())
	})
	return commandSet[name]
}

// parseCommands reads the "Available Commands:" block of cobra's help.
func parseCommands(help string) map[string]bool {
	cmds := map[string]bool{}
	in := false
	for _, line := range strings.Split(help, "\n") {
		switch {
		case strings.HasPrefix(line, "Available Commands:"):
			in = true
		case in && strings.TrimSpace(line) == "":
			in = false
		case in:
			if f := strings.Fields(line); len(f) > 0 {
				cmds[f[0]] = true
			}
		}
	}
	return cmds
}

// ---- the ipmi_sim farm, one per test binary ----

const (
	farmUser     = "admin"
	farmPassword = "Farm-ipmisim-7qX2"
	farmSize     = 12
)

// farmBase: 127.0.70.x is left alone (other work runs an ipmi_sim on
// 127.0.70.1); the farm takes 127.0.71.1 and up.
var farmBase = netip.MustParseAddr("127.0.71.1")

var (
	farmMu  sync.Mutex
	theFarm *Farm
	farmErr error
	farmUse = map[int]string{}
)

// farmBMC returns BMC i of the shared ipmi_sim farm (started on first use,
// stopped by TestMain), reserved for this test: two tests never share a
// BMC, so each owns its power state and SEL. At cleanup it checks that
// ipmi_sim is still alive (rmm must never send what crashes it) and that no
// session was left on it.
func farmBMC(t *testing.T, i int) *FarmBMC {
	t.Helper()
	needTool(t, "ipmi_sim", "openipmi")
	needTool(t, "ipmitool", "ipmitool")
	farmMu.Lock()
	if theFarm == nil && farmErr == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		theFarm, farmErr = StartFarm(ctx, FarmConfig{Base: farmBase, N: farmSize, User: farmUser, Password: farmPassword})
		cancel()
	}
	if farmErr != nil {
		farmMu.Unlock()
		t.Fatalf("ipmi_sim farm: %v", farmErr)
	}
	if other, taken := farmUse[i]; taken {
		farmMu.Unlock()
		t.Fatalf("farm BMC %d is already used by %s", i, other)
	}
	farmUse[i] = t.Name()
	f := theFarm
	farmMu.Unlock()
	b := f.BMCs()[i]
	b.skipSessionCheck = ""
	t.Cleanup(func() {
		farmMu.Lock()
		delete(farmUse, i)
		farmMu.Unlock()
		if err := b.Alive(); err != nil {
			t.Errorf("%v: a client sent it something that crashed it (Get Channel Payload Support for channel 0x0E?)\nsim.log:\n%s", err, b.readFile("sim.log"))
			return
		}
		if b.skipSessionCheck != "" {
			t.Logf("%s: sessions not counted at cleanup: %s", b.Addr, b.skipSessionCheck)
			return
		}
		checkFarmSessions(t, b)
	})
	return b
}

// checkFarmSessions asserts ipmi_sim reports one active session: the
// query's own.
func checkFarmSessions(t *testing.T, b *FarmBMC) {
	t.Helper()
	n, err := b.ActiveSessions(context.Background())
	if err != nil {
		t.Errorf("ipmi_sim at %s: %v", b.Addr, err)
		return
	}
	if n != 1 {
		t.Errorf("ipmi_sim at %s reports %d active sessions, want 1 (the query's own): a client leaked a session", b.Addr, n)
	}
}

func stopFarm() {
	farmMu.Lock()
	defer farmMu.Unlock()
	if theFarm != nil {
		theFarm.Close()
	}
}

// ---- in-process simulated fleets ----

// Every fleet gets 32 addresses of its own in 127.0.72.0 – 127.0.77.255, so
// parallel tests never share a BMC address; a block is free again when its
// test ends (after its fleet closed), so -count=N works.
var (
	blockMu   sync.Mutex
	blockUsed [48]bool
)

func nextBase(t *testing.T) netip.Addr {
	t.Helper()
	blockMu.Lock()
	defer blockMu.Unlock()
	for n := range blockUsed {
		if blockUsed[n] {
			continue
		}
		blockUsed[n] = true
		// Registered before the fleet's own cleanup, so it runs after it.
		t.Cleanup(func() {
			blockMu.Lock()
			blockUsed[n] = false
			blockMu.Unlock()
		})
		return netip.AddrFrom4([4]byte{127, 0, byte(72 + n/8), byte((n%8)*32 + 1)})
	}
	t.Fatal("interop tests ran out of loopback blocks (127.0.72-77.x): more than 48 fleets at once")
	return netip.Addr{}
}

// High ports everywhere outside the suite's own network namespace, so the
// suite runs without root and never meets a BMC simulator on 623/443.
const (
	simIPMIPort    = 6230
	simRedfishPort = 8443
	simUser        = "admin"
	// simPassword is every simulated fleet's BMC password. Tests assert it
	// never shows up in output, state files or any process's argv.
	simPassword = "Interop-S3cret-zq8"
	passwordEnv = "RMM_INTEROP_PASSWORD"
)

// fhost is one host of a test fleet.
type fhost struct {
	name      string
	protocols string // inventory list, e.g. "[ipmi]" (default) or "[redfish]"
	vendor    string
	scenarios []sim.Scenario
	delay     time.Duration
	powerOff  bool
	extra     string // more YAML for the host entry, each line indented 4 spaces
}

func (h fhost) has(p string) bool {
	if h.protocols == "" {
		return p == "ipmi"
	}
	return strings.Contains(h.protocols, p)
}

// fleet is an inventory, the simulated fleet it describes, and the
// environment rmm runs in (state under the test's own directory).
type fleet struct {
	t     *testing.T
	dir   string
	inv   string
	sim   *sim.Fleet
	hosts []fhost
	addrs []netip.Addr
	env   map[string]string
}

// newFleet starts an in-process simulated fleet on the next address block
// and writes its inventory. Cleanup checks every BMC session was closed.
func newFleet(t *testing.T, opts []sim.Option, hosts ...fhost) *fleet {
	t.Helper()
	if len(hosts) > 30 {
		t.Fatal("a test fleet has at most 30 hosts")
	}
	dir := t.TempDir()
	f := &fleet{t: t, dir: dir, hosts: hosts, addrs: sim.Addrs(nextBase(t), len(hosts))}
	f.env = map[string]string{
		passwordEnv:      simPassword,
		"XDG_STATE_HOME": filepath.Join(dir, "state"),
		"HOME":           dir,
		"RMM_NO_SYSLOG":  "1",
		"USER":           "interop",
		"PATH":           os.Getenv("PATH"),
		"LANG":           "C.UTF-8",
	}
	f.inv = filepath.Join(dir, "inventory.yaml")
	f.writeInventory("credentials:\n  t: {user: " + simUser + ", password_env: " + passwordEnv + "}\n")
	var specs []sim.HostSpec
	for i, h := range hosts {
		s := sim.HostSpec{Name: h.name, Addr: f.addrs[i], Vendor: h.vendor, Username: simUser, Password: simPassword,
			Scenarios: h.scenarios, Delay: h.delay, PowerOff: h.powerOff}
		if h.has("ipmi") {
			s.IPMIPort = simIPMIPort
		}
		if h.has("redfish") {
			s.RedfishPort = simRedfishPort
		}
		specs = append(specs, s)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	fl, err := sim.Start(ctx, specs, append([]sim.Option{sim.WithCycleDelay(100 * time.Millisecond)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	f.sim = fl
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := fl.WaitSessionsClosed(ctx); err != nil {
			t.Errorf("sessions left open on the simulated BMCs: %v", err)
		}
		fl.Close()
	})
	return f
}

// writeInventory (re)writes the fleet's inventory with the given
// credentials block.
func (f *fleet) writeInventory(credentials string) {
	f.t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "version: 1\ndefaults:\n  credentials: t\n  ipmi: {port: %d}\n  redfish: {port: %d}\n", simIPMIPort, simRedfishPort)
	b.WriteString(credentials)
	b.WriteString("groups:\n  fleet: {}\nhosts:\n")
	for i, h := range f.hosts {
		fmt.Fprintf(&b, "  - name: %s\n    bmc: %s\n    groups: [fleet]\n", h.name, f.addrs[i])
		p := h.protocols
		if p == "" {
			p = "[ipmi]"
		}
		fmt.Fprintf(&b, "    protocols: %s\n", p)
		if h.extra != "" {
			b.WriteString(strings.TrimRight(h.extra, "\n") + "\n")
		}
	}
	if err := os.WriteFile(f.inv, []byte(b.String()), 0o600); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fleet) host(name string) *sim.Host {
	f.t.Helper()
	h := f.sim.Host(name)
	if h == nil {
		f.t.Fatalf("no simulated host %s", name)
	}
	return h
}

func (f *fleet) addr(name string) string { return f.host(name).Spec.Addr.String() }

// journal is the audit journal's content.
func (f *fleet) journal() string {
	b, _ := os.ReadFile(filepath.Join(f.env["XDG_STATE_HOME"], "rmm", "audit.log"))
	return string(b)
}

// result is one rmm run.
type result struct {
	code    int
	stdout  string
	stderr  string
	elapsed time.Duration
}

func (r result) String() string {
	return fmt.Sprintf("exit %d after %s\nstdout:\n%s\nstderr:\n%s", r.code, r.elapsed.Round(time.Millisecond), r.stdout, r.stderr)
}

// main runs rmm in-process (cli.Main, under -race), not a terminal.
func (f *fleet) main(ctx context.Context, args ...string) result {
	f.t.Helper()
	var out, errb bytes.Buffer
	env := &cli.Env{IO: cli.Test(strings.NewReader(""), &out, &errb), Getenv: func(k string) string { return f.env[k] },
		Providers: cli.DefaultProviders()}
	start := time.Now()
	code := cli.Main(ctx, append([]string{"-i", f.inv}, args...), env)
	r := result{code: code, stdout: out.String(), stderr: errb.String(), elapsed: time.Since(start)}
	checkNoSecret(f.t, "rmm "+strings.Join(args, " "), r, simPassword)
	return r
}

// bin runs the real rmm binary with the fleet's environment.
func (f *fleet) bin(ctx context.Context, args ...string) result {
	f.t.Helper()
	return runBinary(f.t, ctx, f.env, nil, append([]string{"-i", f.inv}, args...), simPassword)
}

// runBinary runs rmm (inside a namespace when ns is set) with exactly env,
// bounded by ctx (default one minute), and checks its output for password.
func runBinary(t *testing.T, ctx context.Context, env map[string]string, ns *Netns, args []string, password string) result {
	t.Helper()
	return runBinaryStdin(t, ctx, env, ns, "", args, password)
}

// runBinaryStdin is runBinary with stdin (a pipe, not a terminal).
func runBinaryStdin(t *testing.T, ctx context.Context, env map[string]string, ns *Netns, stdin string, args []string, password string) result {
	t.Helper()
	bin := needBinary(t)
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Minute)
		defer cancel()
	}
	var cmd *exec.Cmd
	if ns != nil {
		cmd = ns.Command(ctx, bin, args...)
	} else {
		cmd = exec.CommandContext(ctx, bin, args...)
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		cmd.WaitDelay = 2 * time.Second
	}
	cmd.Env = envList(env)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	cmd.Stdin = strings.NewReader(stdin)
	start := time.Now()
	err := cmd.Run()
	r := result{stdout: out.String(), stderr: errb.String(), elapsed: time.Since(start)}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	default:
		t.Fatalf("rmm %s: %v", strings.Join(args, " "), err)
	}
	checkNoSecret(t, "rmm "+strings.Join(args, " "), r, password)
	if strings.Contains(r.stderr, "panic:") || strings.Contains(r.stderr, "goroutine ") {
		t.Errorf("rmm %s panicked:\n%s", strings.Join(args, " "), r.stderr)
	}
	return r
}

func envList(m map[string]string) []string {
	var l []string
	for k, v := range m {
		l = append(l, k+"="+v)
	}
	return l
}

// checkNoSecret fails the test if the password is in rmm's output, or if
// the output shows the scrubber had to blank it: "[redacted]" in the
// output means some code wrote the password and only the last line of
// defence kept it off the screen.
func checkNoSecret(t *testing.T, what string, r result, password string) {
	t.Helper()
	for name, s := range map[string]string{"stdout": r.stdout, "stderr": r.stderr} {
		if strings.Contains(s, password) {
			t.Errorf("%s: the password appeared on %s:\n%s", what, name, s)
		}
		if strings.Contains(s, "[redacted]") {
			t.Errorf("%s: %s shows [redacted]: code wrote the password and the scrubber blanked it:\n%s", what, name, s)
		}
	}
}

// hostErr is the start of every per-host error: "name (bmc IP)".
func hostErr(name, ip string) string { return name + " (bmc " + ip + ")" }

// eventually polls cond every 20 ms for at most d.
func eventually(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, d)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

var spaces = regexp.MustCompile(`\s+`)

// oneLine squeezes whitespace, for quoting tool output in messages.
func oneLine(s string) string { return strings.TrimSpace(spaces.ReplaceAllString(s, " ")) }
