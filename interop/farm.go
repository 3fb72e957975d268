package interop

import (
	"bytes"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/rmm-project/rmm/sim"
)

// The ipmi_sim configuration, adapted from the shared recipe
// (../shared/sim/ipmi_sim): see the comments in each file.
var (
	//go:embed ipmi_sim/lan.conf.tmpl
	lanConfTmpl string
	//go:embed ipmi_sim/bmc.emu.tmpl
	bmcEmu string
	//go:embed ipmi_sim/chassis.sh
	chassisScript []byte
)

// FarmConfig describes a farm of OpenIPMI ipmi_sim BMCs on consecutive
// loopback addresses.
type FarmConfig struct {
	// Base is the first BMC's address; the others follow (sim.Addrs).
	Base netip.Addr
	// N is how many BMCs to start.
	N int
	// IPMIPort is every BMC's UDP port (default 6230: no root needed).
	IPMIPort uint16
	// ConsolePort is ipmi_sim's emulator console (default 9000), SOLPort
	// the SOL hub's BMC side (9003), HostPort its host side (9004).
	ConsolePort, SOLPort, HostPort uint16
	// User and Password are the BMCs' administrator account. The password
	// goes into the BMCs' lan.conf and ipmitool's environment, never argv.
	User, Password string
	// Dir holds configs, state and logs; empty means a new temporary
	// directory, removed by Close.
	Dir string
	// PowerOff starts every chassis powered off.
	PowerOff bool
}

// Farm is a running set of ipmi_sim processes plus their SOL hub.
type Farm struct {
	cfg      FarmConfig
	dir      string
	ownDir   bool
	hub      *solHub
	bmcs     []*FarmBMC
	ipmitool string // ipmitool path

	closeOnce sync.Once
	closeErr  error
}

// FarmBMC is one ipmi_sim BMC of a farm.
type FarmBMC struct {
	farm *Farm
	// Addr is the BMC's IP address.
	Addr netip.Addr
	// Dir holds lan.conf, state/, power, chassis.log, console.log,
	// keys.log and sim.log.
	Dir string

	cmd     *exec.Cmd
	done    chan struct{}
	waitErr error
	emuMu   sync.Mutex // the emulator console takes one client at a time

	// skipSessionCheck, when set, says why a test's cleanup must not
	// count sessions on this BMC.
	skipSessionCheck string
}

// Defaults for FarmConfig.
const (
	DefaultFarmIPMIPort    = 6230
	DefaultFarmConsolePort = 9000
	DefaultFarmSOLPort     = 9003
	DefaultFarmHostPort    = 9004
)

// StartFarm starts cfg.N ipmi_sim BMCs and returns once every one answers
// an RMCP+ request (with ipmitool, cipher suite 3) and has its SEL clock
// set. It refuses to start when any of the farm's ports is already bound
// (ipmi_sim binds with SO_REUSEADDR, so a collision would otherwise be
// silent). On error everything started is stopped again.
//
// Every process is started by this process, recorded, and killed by PID on
// Close; each also gets SIGKILL from the kernel if this process dies first
// (Pdeathsig), so a crashed test leaves no BMC behind.
func StartFarm(ctx context.Context, cfg FarmConfig) (*Farm, error) {
	if cfg.N <= 0 {
		return nil, errors.New("farm: N must be positive")
	}
	setDefault(&cfg.IPMIPort, DefaultFarmIPMIPort)
	setDefault(&cfg.ConsolePort, DefaultFarmConsolePort)
	setDefault(&cfg.SOLPort, DefaultFarmSOLPort)
	setDefault(&cfg.HostPort, DefaultFarmHostPort)
	if cfg.User == "" || cfg.Password == "" || len(cfg.Password) > 20 {
		return nil, errors.New("farm: user and a password of 1 to 20 bytes are required")
	}
	simBin, err := exec.LookPath("ipmi_sim")
	if err != nil {
		return nil, fmt.Errorf("farm: %w (Debian package openipmi)", err)
	}
	it, err := exec.LookPath("ipmitool")
	if err != nil {
		return nil, fmt.Errorf("farm: %w (Debian package ipmitool)", err)
	}
	addrs := sim.Addrs(cfg.Base, cfg.N)
	for _, a := range addrs {
		if err := portsFree(a, cfg); err != nil {
			return nil, err
		}
	}
	f := &Farm{cfg: cfg, dir: cfg.Dir, hub: newSOLHub(), ipmitool: it}
	if f.dir == "" {
		if f.dir, err = os.MkdirTemp("", "rmm-interop-ipmisim-"); err != nil {
			return nil, err
		}
		f.ownDir = true
	}
	ok := false
	defer func() {
		if !ok {
			f.Close()
		}
	}()
	chassis := filepath.Join(f.dir, "chassis.sh")
	if err := os.WriteFile(chassis, chassisScript, 0o755); err != nil {
		return nil, err
	}
	// 1. Render configs; the SOL hub listens before any ipmi_sim starts
	// (ipmi_sim retries a failed SOL connect only every 10 s).
	for _, a := range addrs {
		b := &FarmBMC{farm: f, Addr: a, Dir: filepath.Join(f.dir, a.String()), done: make(chan struct{})}
		if err := b.render(chassis); err != nil {
			return nil, err
		}
		if err := f.hub.add(a, cfg.SOLPort, cfg.HostPort, b.Dir); err != nil {
			return nil, err
		}
		f.bmcs = append(f.bmcs, b)
	}
	// 2. The BMCs. -n: no console on stdin.
	for _, b := range f.bmcs {
		if err := b.start(simBin); err != nil {
			return nil, err
		}
	}
	// 3. Wait for each, in parallel, then set its SEL clock (ipmi_sim
	// stamps entries with CLOCK_MONOTONIC plus an offset only Set SEL Time
	// changes: without it new entries read "Pre-Init").
	errs := make([]error, len(f.bmcs))
	var wg sync.WaitGroup
	for i, b := range f.bmcs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = b.waitReady(ctx)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	ok = true
	return f, nil
}

func setDefault(p *uint16, v uint16) {
	if *p == 0 {
		*p = v
	}
}

// portsFree binds each of the farm's ports on a (without SO_REUSEADDR for
// UDP) and releases it, so a stale simulator is an error, not a silent
// collision.
func portsFree(a netip.Addr, cfg FarmConfig) error {
	u, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(a, cfg.IPMIPort)))
	if err != nil {
		return fmt.Errorf("farm: %s:%d/udp is taken (a stale ipmi_sim? see ss -lnup): %w", a, cfg.IPMIPort, err)
	}
	u.Close()
	for _, p := range []uint16{cfg.ConsolePort, cfg.SOLPort, cfg.HostPort} {
		l, err := net.ListenTCP("tcp", net.TCPAddrFromAddrPort(netip.AddrPortFrom(a, p)))
		if err != nil {
			return fmt.Errorf("farm: %s:%d/tcp is taken (a stale ipmi_sim? see ss -lntp): %w", a, p, err)
		}
		l.Close()
	}
	return nil
}

// render writes lan.conf (mode 0600: it holds the password), bmc.emu and
// the initial power state.
func (b *FarmBMC) render(chassis string) error {
	cfg := b.farm.cfg
	if err := os.MkdirAll(filepath.Join(b.Dir, "state"), 0o700); err != nil {
		return err
	}
	a4 := b.Addr.As4()
	// 16 bytes (32 hex digits, ipmi_sim insists), unique per BMC.
	guid := fmt.Sprintf("a5a5a5a500000000%02x%02x%02x%02x%04x%04x", a4[0], a4[1], a4[2], a4[3], cfg.IPMIPort, 0)
	conf := strings.NewReplacer(
		"@NAME@", "bmc-"+b.Addr.String(), "@IP@", b.Addr.String(),
		"@IPMIPORT@", strconv.Itoa(int(cfg.IPMIPort)), "@CONSOLEPORT@", strconv.Itoa(int(cfg.ConsolePort)),
		"@SOLPORT@", strconv.Itoa(int(cfg.SOLPort)), "@HOSTPORT@", strconv.Itoa(int(cfg.HostPort)),
		"@DIR@", b.Dir, "@CHASSIS@", chassis, "@USER@", cfg.User, "@PASS@", cfg.Password, "@GUID@", guid,
	).Replace(lanConfTmpl)
	if err := os.WriteFile(filepath.Join(b.Dir, "lan.conf"), []byte(conf), 0o600); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(b.Dir, "bmc.emu"), []byte(bmcEmu), 0o600); err != nil {
		return err
	}
	power := "1\n"
	if cfg.PowerOff {
		power = "0\n"
	}
	return os.WriteFile(filepath.Join(b.Dir, "power"), []byte(power), 0o600)
}

func (b *FarmBMC) start(sim string) error {
	log, err := os.Create(filepath.Join(b.Dir, "sim.log"))
	if err != nil {
		return err
	}
	defer log.Close()
	cmd := exec.Command(sim, "-n", "-c", filepath.Join(b.Dir, "lan.conf"), "-f", filepath.Join(b.Dir, "bmc.emu"),
		"-s", filepath.Join(b.Dir, "state"))
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		close(b.done)
		return fmt.Errorf("farm: start ipmi_sim for %s: %w", b.Addr, err)
	}
	b.cmd = cmd
	go func() {
		b.waitErr = cmd.Wait()
		close(b.done)
	}()
	return nil
}

// waitReady polls until the BMC answers, then sets its SEL clock and waits
// for its SOL connection to the hub.
func (b *FarmBMC) waitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	var last error
	for i := 0; i < 100; i++ {
		if err := b.Alive(); err != nil {
			return fmt.Errorf("%w\n%s", err, b.readFile("sim.log"))
		}
		out, err := b.Ipmitool(ctx, "chassis", "power", "status")
		if err == nil && strings.HasPrefix(out, "Chassis Power is") {
			last = nil
			break
		}
		last = fmt.Errorf("farm: ipmi_sim at %s does not answer: %v: %s", b.Addr, err, out)
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (%w)", last, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
	if last != nil {
		return last
	}
	if out, err := b.Ipmitool(ctx, "sel", "time", "set", "now"); err != nil {
		return fmt.Errorf("farm: %s: sel time set: %w: %s", b.Addr, err, out)
	}
	select {
	case <-b.farm.hub.line(b.Addr).connected:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("farm: ipmi_sim at %s never connected its serial line to the SOL hub", b.Addr)
	}
}

// Close stops every ipmi_sim (SIGTERM, SIGKILL after 5 s), strictly the
// processes this farm started, then the SOL hub, and removes the farm's
// directory if it made it.
func (f *Farm) Close() error {
	f.closeOnce.Do(func() {
		var errs []error
		for _, b := range f.bmcs {
			if b.cmd != nil && b.cmd.Process != nil {
				_ = b.cmd.Process.Signal(syscall.SIGTERM)
			}
		}
		deadline := time.After(5 * time.Second)
		for _, b := range f.bmcs {
			if b.cmd == nil {
				continue
			}
			select {
			case <-b.done:
			case <-deadline:
				_ = b.cmd.Process.Kill()
				<-b.done
			}
		}
		errs = append(errs, f.hub.close())
		if f.ownDir {
			errs = append(errs, os.RemoveAll(f.dir))
		}
		f.closeErr = errors.Join(errs...)
	})
	return f.closeErr
}

// BMCs returns the farm's BMCs in address order.
func (f *Farm) BMCs() []*FarmBMC { return append([]*FarmBMC(nil), f.bmcs...) }

// Config returns the farm's configuration with defaults filled in.
func (f *Farm) Config() FarmConfig { return f.cfg }

// Dir is the farm's directory.
func (f *Farm) Dir() string { return f.dir }

// IPMIAddr is the BMC's UDP endpoint.
func (b *FarmBMC) IPMIAddr() netip.AddrPort { return netip.AddrPortFrom(b.Addr, b.farm.cfg.IPMIPort) }

// PID is the ipmi_sim process ID.
func (b *FarmBMC) PID() int {
	if b.cmd == nil || b.cmd.Process == nil {
		return 0
	}
	return b.cmd.Process.Pid
}

// Alive returns nil while the ipmi_sim process runs, else how it ended
// (a crash shows as "signal: segmentation fault").
func (b *FarmBMC) Alive() error {
	select {
	case <-b.done:
		return fmt.Errorf("ipmi_sim at %s (pid %d) is not running: %v", b.Addr, b.PID(), b.waitErr)
	default:
		return nil
	}
}

// Stop sends SIGSTOP: a stopped ipmi_sim is a BMC that never answers,
// without losing its state. Requests that arrive meanwhile are answered
// after Continue.
func (b *FarmBMC) Stop() error { return b.cmd.Process.Signal(syscall.SIGSTOP) }

// Continue sends SIGCONT to a stopped ipmi_sim.
func (b *FarmBMC) Continue() error { return b.cmd.Process.Signal(syscall.SIGCONT) }

// Ipmitool runs ipmitool against the BMC over lanplus with cipher suite 3
// (ipmi_sim stalls 10 s per call without -C), the password in
// IPMI_PASSWORD (-E), never on the command line. It returns combined
// output.
func (b *FarmBMC) Ipmitool(ctx context.Context, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	cfg := b.farm.cfg
	full := append([]string{"-I", "lanplus", "-C", "3", "-N", "1", "-R", "2", "-H", b.Addr.String(),
		"-p", strconv.Itoa(int(cfg.IPMIPort)), "-U", cfg.User, "-E"}, args...)
	cmd := exec.CommandContext(ctx, b.farm.ipmitool, full...)
	cmd.Env = append(os.Environ(), "IPMI_PASSWORD="+cfg.Password)
	cmd.WaitDelay = time.Second
	out, err := cmd.CombinedOutput()
	return string(out), err
}

var activeSessions = regexp.MustCompile(`(?m)^active sessions\s*:\s*(\d+)`)

// ActiveSessions asks the BMC how many sessions are active, with ipmitool
// `session info active`; the answer includes the query's own session.
func (b *FarmBMC) ActiveSessions(ctx context.Context) (int, error) {
	out, err := b.Ipmitool(ctx, "session", "info", "active")
	if err != nil {
		return 0, fmt.Errorf("session info active: %w: %s", err, out)
	}
	m := activeSessions.FindStringSubmatch(out)
	if m == nil {
		return 0, fmt.Errorf("session info active: no count in %q", out)
	}
	return strconv.Atoi(m[1])
}

// PowerOn reads the chassis state file chassis.sh keeps.
func (b *FarmBMC) PowerOn() bool { return strings.TrimSpace(b.readFile("power")) == "1" }

// SetPowerState writes the chassis state file directly, without any IPMI:
// a test's starting point.
func (b *FarmBMC) SetPowerState(on bool) error {
	v := "0\n"
	if on {
		v = "1\n"
	}
	return os.WriteFile(filepath.Join(b.Dir, "power"), []byte(v), 0o600)
}

// ChassisLog is every chassis "set" the BMC performed, one per line.
func (b *FarmBMC) ChassisLog() string { return b.readFile("chassis.log") }

// ConsoleLog is everything the host printed on its serial console.
func (b *FarmBMC) ConsoleLog() string { return b.readFile("console.log") }

func (b *FarmBMC) readFile(name string) string {
	data, _ := os.ReadFile(filepath.Join(b.Dir, name))
	return string(data)
}

// Print makes the host print text on its serial console: what an active
// SOL session receives (ipmi_sim drops it, apart from its history buffer,
// when no session is active).
func (b *FarmBMC) Print(text string) error {
	l := b.farm.hub.line(b.Addr)
	if l == nil {
		return fmt.Errorf("no serial line for %s", b.Addr)
	}
	l.print([]byte(text))
	return nil
}

// Emu runs ipmi_sim emulator commands (man 5 ipmi_sim_cmd) on the BMC's
// console and returns its answers. An answer starting with "**" is
// ipmi_sim's error marker and makes the call fail. The console has no
// authentication (it is on loopback) and understands "quit", which stops
// the simulator: never send it.
func (b *FarmBMC) Emu(ctx context.Context, cmds ...string) (string, error) {
	b.emuMu.Lock()
	defer b.emuMu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", netip.AddrPortFrom(b.Addr, b.farm.cfg.ConsolePort).String())
	if err != nil {
		return "", fmt.Errorf("emulator console of %s: %w", b.Addr, err)
	}
	defer c.Close()
	dl, _ := ctx.Deadline()
	_ = c.SetDeadline(dl)
	for _, cmd := range cmds {
		if strings.TrimSpace(cmd) == "quit" {
			return "", errors.New("emulator console: refusing to send quit")
		}
		if _, err := fmt.Fprintf(c, "%s\n", cmd); err != nil {
			return "", err
		}
	}
	// The console greets with a prompt ("> ") and prints one after every
	// command; it also sends telnet option bytes (IAC ...), dropped here.
	var out bytes.Buffer
	want := len(cmds) + 1
	buf := make([]byte, 1024)
	for bytes.Count(out.Bytes(), []byte(">")) < want {
		n, err := c.Read(buf)
		out.Write(buf[:n])
		if err != nil {
			return cleanTelnet(out.Bytes()), fmt.Errorf("emulator console of %s: %w (%d of %d prompts)", b.Addr, err, bytes.Count(out.Bytes(), []byte(">")), want)
		}
	}
	text := cleanTelnet(out.Bytes())
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "**") {
			return text, fmt.Errorf("emulator console of %s: %s", b.Addr, strings.TrimSpace(line))
		}
	}
	return text, nil
}

// cleanTelnet drops telnet negotiation (IAC x y) and carriage returns.
func cleanTelnet(b []byte) string {
	var out []byte
	for i := 0; i < len(b); i++ {
		switch {
		case b[i] == 0xff && i+2 < len(b):
			i += 2
		case b[i] == '\r' || b[i] >= 0xf0:
		default:
			out = append(out, b[i])
		}
	}
	return string(out)
}

// AddPanicSEL logs what Linux's ipmi_msghandler logs on a kernel panic
// with panic_op=string (as the recipe's add-panic-sel.sh does): an OS
// Critical Stop system event (generator 0x0041, sensor type 0x20, sensor
// 1, event type 0x6f, data1 0xa1: run-time critical stop, the first two
// characters of msg as OEM data), then one OEM record (type 0xf0) per 11
// characters of msg. With console set, the host also prints a panic trace.
func (b *FarmBMC) AddPanicSEL(ctx context.Context, msg string, console bool) error {
	d2, d3 := byte(0), byte(0)
	if len(msg) > 0 {
		d2 = msg[0]
	}
	if len(msg) > 1 {
		d3 = msg[1]
	}
	cmds := []string{fmt.Sprintf("sel_add 0x20 0x02 0 0 0 0 0x41 0x00 0x04 0x20 0x01 0x6f 0xa1 0x%02x 0x%02x", d2, d3)}
	for seq, rest := 0, msg; rest != ""; seq++ {
		chunk := rest[:min(11, len(rest))]
		rest = rest[len(chunk):]
		var sb strings.Builder
		fmt.Fprintf(&sb, "sel_add 0x20 0xf0 0x20 0x%02x", seq)
		for k := range 11 {
			c := byte(0)
			if k < len(chunk) {
				c = chunk[k]
			}
			fmt.Fprintf(&sb, " 0x%02x", c)
		}
		cmds = append(cmds, sb.String())
	}
	if _, err := b.Emu(ctx, cmds...); err != nil {
		return err
	}
	if console {
		if msg == "" {
			msg = "Fatal exception"
		}
		return b.Print("\r\n[  123.456789] Kernel panic - not syncing: " + msg + "\r\n[  123.456796] ---[ end Kernel panic - not syncing: " + msg + " ]---\r\n")
	}
	return nil
}
