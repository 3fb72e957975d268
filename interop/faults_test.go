package interop

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rmm-project/rmm/bmc"
	"github.com/rmm-project/rmm/cli"
	"github.com/rmm-project/rmm/secret"
	"github.com/rmm-project/rmm/sim"
	"github.com/rmm-project/rmm/sim/ipmisim"
	"github.com/rmm-project/rmm/sim/redfishsim"
)

// faultTimeout is every fault case's --timeout; faultSlack what a run may
// take beyond it (closing sessions, a busy 2-core CI machine under -race).
const (
	faultTimeout = 5 * time.Second
	faultSlack   = 4 * time.Second
)

// faultRuns bounds how many rmm commands the fault cases run at once, so a
// 2-core CI machine under -race still answers the healthy hosts in time.
var faultRuns = make(chan struct{}, 12)

// hostOutcome is one host's result in a command's JSON output: "ok", or
// the outcome and error.
type hostOutcome struct {
	ok      bool
	outcome string // power: bmc.Outcome; others: "failed"
	err     string
}

// probe is an rmm command run against a faulty fleet, and how to read each
// host's outcome from its JSON.
type probe struct {
	name  string
	args  []string
	parse func(t *testing.T, r result) map[string]hostOutcome
}

func probes() []probe {
	ps := []probe{
		{"power status", []string{"power", "status", "all", "-o", "json"}, func(t *testing.T, r result) map[string]hostOutcome {
			m := map[string]hostOutcome{}
			for h, row := range powerRows(t, r) {
				m[h] = hostOutcome{ok: row.Result == "ok", outcome: row.Result, err: row.Error}
			}
			return m
		}},
	}
	if hasCommand("sel") {
		ps = append(ps, probe{"sel", []string{"sel", "all", "-o", "json"}, func(t *testing.T, r result) map[string]hostOutcome {
			m := map[string]hostOutcome{}
			for h, s := range selHosts(t, r) {
				m[h] = hostOutcome{ok: s.Error == "", outcome: "failed", err: s.Error}
			}
			return m
		}})
	}
	if hasCommand("health") {
		ps = append(ps, probe{"health", []string{"health", "all", "-o", "json"}, parseHealth})
	}
	if hasCommand("audit") {
		ps = append(ps, probe{"audit", []string{"audit", "all", "-o", "json"}, parseGenericHosts})
	}
	return ps
}

// parseHealth reads `rmm health -o json`: a host is reachable when "up"
// (its Nagios status may still be WARNING: a simulated vendor tree reports
// a degraded power supply).
func parseHealth(t *testing.T, r result) map[string]hostOutcome {
	t.Helper()
	var doc struct {
		Hosts []struct {
			Host   string `json:"host"`
			Up     bool   `json:"up"`
			Status string `json:"status"`
			Error  string `json:"error"`
		} `json:"hosts"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil {
		t.Fatalf("rmm health -o json is not what it was (%v):\n%s", err, r)
	}
	m := map[string]hostOutcome{}
	for _, h := range doc.Hosts {
		m[h.Host] = hostOutcome{ok: h.Up, outcome: h.Status, err: h.Error}
	}
	return m
}

// parseGenericHosts reads a JSON list of objects with "host" and
// "error"/"result" members.
func parseGenericHosts(t *testing.T, r result) map[string]hostOutcome {
	t.Helper()
	var hs []map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &hs); err != nil {
		t.Fatalf("not JSON (%v):\n%s", err, r)
	}
	m := map[string]hostOutcome{}
	for _, h := range hs {
		name, _ := h["host"].(string)
		e, _ := h["error"].(string)
		res, _ := h["result"].(string)
		m[name] = hostOutcome{ok: e == "" && (res == "" || res == "ok"), outcome: res, err: e}
	}
	return m
}

// TestFaultFleet runs rmm's fleet commands (power status, sel, and health
// and audit when rmm has them) on a fleet where one BMC misbehaves, for each
// way a BMC misbehaves. Every case must end within one --timeout (plus
// slack), report the bad host with an error naming host and BMC IP, leave
// the healthy hosts' results alone, not panic, and leave no session open on
// any simulated BMC.
func TestFaultFleet(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		bad     fhost
		ipmi    *ipmisim.Faults
		redfish *redfishsim.Faults
		// wantOK: the bad host still succeeds (slow but within the
		// timeout, or a loss rate the client's retries absorb).
		wantOK bool
		// sequential runs the commands one after the other.
		sequential bool
		// timeout replaces faultTimeout when set.
		timeout time.Duration
		// outcomes allowed for power status on the bad host.
		outcomes []string
		// errHas: words the power status error must contain (lowercase).
		errHas []string
	}{
		{name: "ipmi never answers", bad: fhost{name: "bad", scenarios: []sim.Scenario{sim.Dead}},
			outcomes: []string{"timeout"}},
		{name: "redfish never answers", bad: fhost{name: "bad", protocols: "[redfish]", vendor: "dell", scenarios: []sim.Scenario{sim.Dead}},
			outcomes: []string{"timeout"}},
		{name: "both protocols dead cost one timeout", bad: fhost{name: "bad", protocols: "[ipmi, redfish]", vendor: "hpe", scenarios: []sim.Scenario{sim.Dead}},
			outcomes: []string{"timeout"}},
		{name: "ipmi answers slowly", bad: fhost{name: "bad", scenarios: []sim.Scenario{sim.Slow}, delay: 150 * time.Millisecond},
			wantOK: true},
		{name: "ipmi answers too slowly", bad: fhost{name: "bad", scenarios: []sim.Scenario{sim.Slow}, delay: 10 * time.Second},
			outcomes: []string{"timeout"}},
		{name: "redfish answers slowly", bad: fhost{name: "bad", protocols: "[redfish]", vendor: "lenovo", scenarios: []sim.Scenario{sim.Slow}, delay: 50 * time.Millisecond},
			wantOK: true},
		// Each lost packet costs a retransmission timeout; health reads
		// about 50 packets' worth, so it gets more time. One client at a
		// time: with several, the deterministic loss pattern can take
		// both tries of one client's Close Session (500 ms budget, see
		// the report), and the session lingers until the BMC expires it.
		{name: "ipmi drops every other packet", bad: fhost{name: "bad"}, ipmi: &ipmisim.Faults{DropEvery: 2},
			wantOK: true, timeout: 30 * time.Second, sequential: true},
		{name: "ipmi drops every packet it receives", bad: fhost{name: "bad"}, ipmi: &ipmisim.Faults{DropEvery: 1},
			outcomes: []string{"timeout"}},
		{name: "redfish resets every connection", bad: fhost{name: "bad", protocols: "[redfish]", vendor: "dmtf"}, redfish: &redfishsim.Faults{ResetConnections: true},
			outcomes: []string{"unreachable", "failed"}},
		{name: "ipmi answers garbage", bad: fhost{name: "bad"}, ipmi: &ipmisim.Faults{GarbageEvery: 1},
			outcomes: []string{"timeout", "failed", "unsupported"}},
		{name: "ipmi truncates every answer", bad: fhost{name: "bad"}, ipmi: &ipmisim.Faults{TruncateEvery: 1},
			outcomes: []string{"timeout", "failed", "unsupported"}},
		{name: "ipmi corrupts every answer", bad: fhost{name: "bad"}, ipmi: &ipmisim.Faults{CorruptEvery: 1},
			outcomes: []string{"timeout", "failed", "unsupported", "auth failed"}},
		{name: "redfish sends malformed JSON", bad: fhost{name: "bad", protocols: "[redfish]", vendor: "supermicro"}, redfish: &redfishsim.Faults{MalformedJSON: true},
			outcomes: []string{"failed", "unsupported"}, errHas: []string{"json"}},
		{name: "redfish truncates every body", bad: fhost{name: "bad", protocols: "[redfish]", vendor: "dell"}, redfish: &redfishsim.Faults{TruncateBody: true},
			outcomes: []string{"failed", "unreachable", "unsupported"}},
		{name: "ipmi session table full", bad: fhost{name: "bad"}, ipmi: &ipmisim.Faults{SessionTableFull: true},
			outcomes: []string{"busy", "failed", "refused"}, errHas: []string{"session"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFleet(t, nil, tc.bad, fhost{name: "ok-ipmi"}, fhost{name: "ok-redfish", protocols: "[redfish]", vendor: "dmtf"})
			bad := f.host("bad")
			if tc.ipmi != nil {
				bad.IPMI.SetFaults(*tc.ipmi)
			}
			if tc.redfish != nil {
				bad.Redfish.SetFaults(*tc.redfish)
			}
			timeout := faultTimeout
			if tc.timeout > 0 {
				timeout = tc.timeout
			}
			// The commands run at once, as several operators (or a monitor
			// and an operator) would.
			ps := probes()
			runs := make([]result, len(ps))
			var wg sync.WaitGroup
			for i, p := range ps {
				wg.Add(1)
				run := func() {
					defer wg.Done()
					faultRuns <- struct{}{}
					defer func() { <-faultRuns }()
					runs[i] = f.main(context.Background(), append(slices.Clone(p.args), "--timeout", timeout.String())...)
				}
				if tc.sequential {
					run()
				} else {
					go run()
				}
			}
			wg.Wait()
			for i, p := range ps {
				r := runs[i]
				if r.elapsed > timeout+faultSlack {
					t.Errorf("%s took %s with --timeout %s: not bounded", p.name, r.elapsed, timeout)
				}
				hosts := p.parse(t, r)
				for _, ok := range []string{"ok-ipmi", "ok-redfish"} {
					if !hosts[ok].ok {
						t.Errorf("%s: healthy host %s was affected: %+v", p.name, ok, hosts[ok])
					}
				}
				got := hosts["bad"]
				if tc.wantOK {
					if !got.ok {
						t.Errorf("%s: the host should still succeed: %+v\n%s", p.name, got, r)
					}
					continue
				}
				if got.ok {
					t.Errorf("%s: the faulty host succeeded:\n%s", p.name, r)
					continue
				}
				if r.code == 0 {
					t.Errorf("%s: exit 0 with a failed host", p.name)
				}
				// health is a Nagios plugin: its report is all on stdout.
				want := hostErr("bad", f.addr("bad"))
				if !strings.Contains(got.err, want) || (p.name != "health" && !strings.Contains(r.stderr, want)) {
					t.Errorf("%s: the error does not name host and BMC IP (%q):\nerror: %s\n%s", p.name, want, got.err, r)
				}
				if p.name == "power status" {
					if !slices.Contains(tc.outcomes, got.outcome) {
						t.Errorf("power status: outcome %q (%s), want one of %v", got.outcome, got.err, tc.outcomes)
					}
					for _, w := range tc.errHas {
						if !strings.Contains(strings.ToLower(got.err), w) {
							t.Errorf("power status: error %q lacks %q", got.err, w)
						}
					}
					if !strings.Contains(r.stderr, "1 of 3 hosts failed") {
						t.Errorf("power status: no summary line:\n%s", r.stderr)
					}
				}
				t.Logf("%s: bad host: %s: %s (%s)", p.name, got.outcome, got.err, r.elapsed.Round(time.Millisecond))
			}
		})
	}

	t.Run("sol held by another session", func(t *testing.T) {
		t.Parallel()
		f := newFleet(t, nil, fhost{name: "bad", scenarios: []sim.Scenario{sim.SOLBusy}}, fhost{name: "ok-ipmi"})
		out := t.TempDir()
		r := f.main(context.Background(), "console", "bad,ok-ipmi", "--capture", "1s", "--out-dir", out, "--timeout", faultTimeout.String())
		if r.code != 1 || r.elapsed > 1*time.Second+faultTimeout+faultSlack {
			t.Errorf("console on a busy SOL: %s", r)
		}
		if want := hostErr("bad", f.addr("bad")); !strings.Contains(r.stderr, want) ||
			!strings.Contains(strings.ToLower(r.stderr), "active") || !strings.Contains(r.stderr, "--force") {
			t.Errorf("console on a busy SOL: the error must name %s, say who holds it and hint at --force:\n%s", want, r.stderr)
		}
		if st, err := os.Stat(filepath.Join(out, "ok-ipmi.log")); err != nil {
			t.Errorf("the healthy host's capture is missing: %v\n%s", err, r)
		} else {
			t.Logf("healthy host's capture: %d bytes", st.Size())
		}
		if st := f.host("bad").IPMI.Stats(); !st.SOLPhantom {
			t.Errorf("rmm took the busy console over without --force: %+v", st)
		}
	})
}

// TestFaultIPMISim: an ipmi_sim that stops answering mid-fleet (SIGSTOP,
// as a hung BMC) costs one timeout and leaves its neighbour alone.
func TestFaultIPMISim(t *testing.T) {
	t.Parallel()
	t.Run("ipmi_sim stopped (SIGSTOP)", func(t *testing.T) {
		stopped, good := farmBMC(t, 9), farmBMC(t, 10)
		e := newFarmEnv(t, "3", stopped, good)
		if err := stopped.Stop(); err != nil {
			t.Fatal(err)
		}
		resumed := false
		t.Cleanup(func() {
			if !resumed {
				_ = stopped.Continue()
			}
		})
		r := e.rmm("power", "status", "@farm", "-o", "json", "--timeout", "2s")
		resumed = stopped.Continue() == nil
		rows := powerRows(t, r)
		if r.code != 1 || r.elapsed > 2*time.Second+faultSlack {
			t.Errorf("power status with a stopped ipmi_sim: %s", r)
		}
		if row := rows[e.names[stopped]]; row.Result != "timeout" || !strings.Contains(row.Error, hostErr(e.names[stopped], stopped.Addr.String())) {
			t.Errorf("stopped BMC: %+v", row)
		}
		if row := rows[e.names[good]]; row.Result != "ok" {
			t.Errorf("its neighbour: %+v", row)
		}
		// What rmm sent while ipmi_sim was stopped is processed when it
		// resumes: half-open sessions ipmi_sim drops after ~30 s.
		stopped.skipSessionCheck = "requests queued while ipmi_sim was stopped are answered when it resumes"
	})
}

// TestFaultIPMIClient proves, at fleet level, that rmm's IPMI client has
// none of the defects LIBRARIES.md lists for go-ipmi's: no socket leaked by
// a failed open, retries bounded by the deadline, and sessions safe across
// goroutines.
func TestFaultIPMIClient(t *testing.T) {
	t.Parallel()
	f := newFleet(t, nil,
		fhost{name: "dead", scenarios: []sim.Scenario{sim.Dead}},
		fhost{name: "badpw", scenarios: []sim.Scenario{sim.WrongCredentials}},
		fhost{name: "full"},
		fhost{name: "garbage"},
		fhost{name: "good"},
	)
	f.host("full").IPMI.SetFaults(ipmisim.Faults{SessionTableFull: true})
	f.host("garbage").IPMI.SetFaults(ipmisim.Faults{GarbageEvery: 1})
	// Nothing listens here: the kernel answers ICMP port unreachable.
	closed := netip.MustParseAddr("127.0.79.250")
	ipmiOnly := map[bmc.Protocol]bmc.ProviderFunc{bmc.ProtocolIPMI: cli.DefaultProviders()[bmc.ProtocolIPMI]}
	engine := &bmc.Engine{Providers: ipmiOnly}
	target := func(name string) bmc.Target {
		tg := bmc.Target{Name: name, Addr: closed, IPMIPort: simIPMIPort, Protocols: []bmc.Protocol{bmc.ProtocolIPMI},
			Username: simUser, Password: secret.New(simPassword)}
		if h := f.sim.Host(name); h != nil {
			tg.Addr = h.Spec.Addr
		}
		return tg
	}

	t.Run("no socket leaked by failed opens", func(t *testing.T) {
		const timeout = 250 * time.Millisecond
		open := func(name string) (time.Duration, error) {
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			defer cancel()
			start := time.Now()
			c, err := engine.Open(ctx, target(name))
			if err == nil {
				c.Close(ctx)
			}
			return time.Since(start), err
		}
		var peers []netip.AddrPort
		for _, name := range []string{"dead", "badpw", "full", "garbage", "closed-port"} {
			peers = append(peers, target(name).IPMIAddr())
		}
		before := sockets(t, peers...)
		// The count must be able to see a leak: a socket left connected to
		// one of the BMCs is one more.
		probe, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(peers[0]))
		if err != nil {
			t.Fatal(err)
		}
		if n := sockets(t, peers...); n != before+1 {
			t.Fatalf("socket count %d with one more socket open, want %d: the count cannot see leaks", n, before+1)
		}
		probe.Close()
		var wg sync.WaitGroup
		for _, name := range []string{"dead", "badpw", "full", "garbage", "closed-port"} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range 20 {
					d, err := open(name)
					if err == nil {
						t.Errorf("%s: open succeeded", name)
						return
					}
					if d > timeout+time.Second {
						t.Errorf("%s: a failed open took %s with a %s deadline", name, d, timeout)
					}
				}
			}()
		}
		wg.Wait()
		time.Sleep(50 * time.Millisecond)
		if after := sockets(t, peers...); after > before {
			t.Errorf("%d sockets open before 100 failed opens, %d after: failed opens leak sockets", before, after)
		}
	})

	t.Run("a dead BMC costs at most --timeout and a bounded number of packets", func(t *testing.T) {
		dead := f.host("dead").IPMI
		before := dead.Stats().PacketsReceived
		r := f.main(context.Background(), "power", "status", "dead", "--timeout", "2s", "-o", "json")
		sent := dead.Stats().PacketsReceived - before
		if r.code != 1 || r.elapsed > 2*time.Second+time.Second {
			t.Errorf("dead BMC with --timeout 2s: %s", r)
		}
		if sent == 0 || sent > 16 {
			t.Errorf("rmm sent %d packets to a dead BMC in 2 s: retries must be bounded (and it must try)", sent)
		}
		t.Logf("rmm sent %d packets to a dead BMC within --timeout 2s (%s)", sent, r.elapsed.Round(time.Millisecond))
	})

	t.Run("one session shared by goroutines", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		good := f.host("good")
		opened := good.IPMI.Stats().SessionsOpened
		c, err := engine.Open(ctx, target("good"))
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		errs := make(chan error, 8*25)
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range 25 {
					st, err := c.PowerState(ctx)
					if err == nil && st != bmc.PowerOn {
						err = fmt.Errorf("power state %q", st)
					}
					if err != nil {
						errs <- err
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Errorf("concurrent PowerState on one session: %v", err)
		}
		if err := c.Close(ctx); err != nil {
			t.Error(err)
		}
		if n := good.IPMI.Stats().SessionsOpened - opened; n != 1 {
			t.Errorf("%d sessions opened for one Conn", n)
		}
	})

	t.Run("many goroutines on the fleet at once", func(t *testing.T) {
		big := newFleet(t, nil, manyHosts(20)...)
		var wg sync.WaitGroup
		results := make([]result, 12)
		for i := range results {
			wg.Add(1)
			go func() {
				defer wg.Done()
				results[i] = big.main(context.Background(), "power", "status", "all", "-o", "json", "-j", "8")
			}()
		}
		wg.Wait()
		for i, r := range results {
			if r.code != 0 {
				t.Errorf("run %d: %s", i, r)
				continue
			}
			for h, row := range powerRows(t, r) {
				if row.Result != "ok" || row.After != "on" {
					t.Errorf("run %d: %s: %+v", i, h, row)
				}
			}
		}
	})
}

func manyHosts(n int) []fhost {
	hs := make([]fhost, n)
	for i := range hs {
		hs[i] = fhost{name: fmt.Sprintf("n%02d", i+1)}
		if i%4 == 3 {
			hs[i].protocols, hs[i].vendor = "[redfish]", "dmtf"
		}
	}
	return hs
}

// sockets counts this process's UDP sockets connected to one of peers
// (all its sockets when peers is empty). Counting only sockets aimed at
// the test's own BMCs keeps the count exact while other tests run; rmm's
// IPMI sessions use one connected UDP socket each (bmc/ipmi/rmcp), as did
// the socket go-ipmi leaked.
func sockets(t *testing.T, peers ...netip.AddrPort) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("SKIP: no /proc/self/fd (%v): socket leaks are NOT checked", err)
	}
	inodes := map[string]bool{}
	for _, e := range ents {
		if l, err := os.Readlink(filepath.Join("/proc/self/fd", e.Name())); err == nil && strings.HasPrefix(l, "socket:[") {
			inodes[strings.TrimSuffix(strings.TrimPrefix(l, "socket:["), "]")] = true
		}
	}
	if len(peers) == 0 {
		return len(inodes)
	}
	want := map[netip.AddrPort]bool{}
	for _, p := range peers {
		want[p] = true
	}
	b, err := os.ReadFile("/proc/self/net/udp")
	if err != nil {
		t.Skipf("SKIP: no /proc/self/net/udp (%v): socket leaks are NOT checked", err)
	}
	n := 0
	for _, line := range strings.Split(string(b), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) < 10 || !inodes[f[9]] {
			continue
		}
		if ap, ok := procAddr(f[2]); ok && want[ap] {
			n++
		}
	}
	return n
}

// procAddr decodes /proc/net/udp's "0100007F:1B58" (IPv4 in host byte
// order, little-endian here; port big-endian hex).
func procAddr(s string) (netip.AddrPort, bool) {
	h, p, ok := strings.Cut(s, ":")
	if !ok || len(h) != 8 {
		return netip.AddrPort{}, false
	}
	var a [4]byte
	for i := range 4 {
		v, err := strconv.ParseUint(h[i*2:i*2+2], 16, 8)
		if err != nil {
			return netip.AddrPort{}, false
		}
		a[3-i] = byte(v)
	}
	port, err := strconv.ParseUint(p, 16, 16)
	if err != nil {
		return netip.AddrPort{}, false
	}
	return netip.AddrPortFrom(netip.AddrFrom4(a), uint16(port)), true
}
