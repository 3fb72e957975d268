package redfish

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rmm-project/rmm/bmc"
	"github.com/rmm-project/rmm/secret"
	"github.com/rmm-project/rmm/sim/machine"
	"github.com/rmm-project/rmm/sim/redfishsim"
)

// dnsAttempts counts lookups through Go's default resolver. rmm never asks
// DNS; TestMain fails the package if anything did, and tests that feed the
// client host names assert it stayed zero.
var dnsAttempts atomic.Int64

func TestMain(m *testing.M) {
	net.DefaultResolver = &net.Resolver{
		PreferGo: true,
		Dial: func(ctx context.Context, network, address string) (net.Conn, error) {
			dnsAttempts.Add(1)
			return nil, errors.New("DNS is disabled in rmm's tests")
		},
	}
	code := m.Run()
	if n := dnsAttempts.Load(); n != 0 {
		fmt.Fprintf(os.Stderr, "FAIL: %d DNS lookups were attempted\n", n)
		code = 1
	}
	os.Exit(code)
}

// vendors are the five trees with what each must yield.
var vendors = []struct {
	name         string
	sel          string // the SEL-equivalent log service
	captured     int    // entries the capture holds in it
	cycle        string // reset type a cycle of a running host uses
	cycleAction  string // what the machine sees for it
	manufacturer string
	model        string
	firmware     string
}{
	{"dell", "/redfish/v1/Managers/iDRAC.Embedded.1/LogServices/Sel", 5, "PowerCycle", "cycle", "Dell Inc.", "PowerEdge R750", "6.00.30.00"},
	{"hpe", "/redfish/v1/Systems/1/LogServices/IML", 5, "ForceRestart", "reset", "HPE", "ProLiant DL385 Gen10 Plus v2", "iLO 5 v2.72"},
	{"lenovo", "/redfish/v1/Systems/1/LogServices/PlatformLog", 5, "ForceRestart", "reset", "Lenovo", "ThinkSystem SR670 V2", "TGBT42S 2.83 2023-07-05"},
	{"supermicro", "/redfish/v1/Systems/1/LogServices/Log1", 82, "PowerCycle", "cycle", "Supermicro", "SYS-821GE-TNHR", "11.01.01"},
	{"dmtf", "/redfish/v1/Systems/437XR1138R2/LogServices/Log1", 2, "ForceRestart", "reset", "Contoso", "3500", "1.45.455b66-rev4"},
}

// Addresses: this package uses 127.0.40.0-127.0.44.255, sim/redfishsim
// the rest of rmm's 127.0.40-49 block, so parallel package runs never
// collide.
var nextAddr atomic.Int32

func newAddr(t testing.TB) netip.Addr {
	t.Helper()
	n := nextAddr.Add(1) - 1
	if n >= 5*250 {
		t.Fatal("out of test addresses")
	}
	return netip.AddrFrom4([4]byte{127, 0, byte(40 + n/250), byte(2 + n%250)})
}

// port returns 443 when it can be bound on ip (root), else 0 (any free
// port): the code under test must work either way.
func port(ip netip.Addr) uint16 {
	ln, err := net.ListenTCP("tcp", net.TCPAddrFromAddrPort(netip.AddrPortFrom(ip, 443)))
	if err != nil {
		return 0
	}
	ln.Close()
	return 443
}

// bmcSim is one simulated BMC and a target pointing at it.
type bmcSim struct {
	srv    *redfishsim.Server
	m      *machine.Machine
	target bmc.Target
	cfg    redfishsim.Config
}

type simOption func(*redfishsim.Config)

func withDelay(d time.Duration) simOption { return func(c *redfishsim.Config) { c.Delay = d } }
func dead() simOption                     { return func(c *redfishsim.Config) { c.Dead = true } }
func withCert(cert tls.Certificate) simOption {
	return func(c *redfishsim.Config) { c.Cert = &cert }
}
func at(ap netip.AddrPort) simOption { return func(c *redfishsim.Config) { c.Addr = ap } }

func newSim(t testing.TB, vendor string, opts ...simOption) *bmcSim {
	t.Helper()
	ip := newAddr(t)
	name := vendor + "-" + strings.ReplaceAll(ip.String(), ".", "-")
	m := machine.New(name, machine.DerivedIdentity(name), machine.WithCycleDelay(20*time.Millisecond))
	t.Cleanup(m.Close)
	pass := "sim-" + vendor + "-pw"
	cfg := redfishsim.Config{
		Addr:     netip.AddrPortFrom(ip, port(ip)),
		Vendor:   vendor,
		Username: "admin",
		Password: pass,
		Machine:  m,
	}
	for _, o := range opts {
		o(&cfg)
	}
	srv, err := redfishsim.Start(cfg)
	if err != nil {
		t.Fatalf("start %s simulator: %v", vendor, err)
	}
	t.Cleanup(func() { srv.Close() })
	return &bmcSim{srv: srv, m: m, cfg: cfg, target: bmc.Target{
		Name:        name,
		Addr:        srv.Addr().Addr(),
		RedfishPort: srv.Addr().Port(),
		Protocols:   []bmc.Protocol{bmc.ProtocolRedfish},
		Username:    "admin",
		Password:    secret.New(pass),
		TLS:         bmc.TLSConfig{Fingerprint: srv.Fingerprint()},
	}}
}

func testCtx(t testing.TB, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// open connects a provider to the simulator and closes it at cleanup.
func (s *bmcSim) open(t testing.TB) *Provider {
	t.Helper()
	p := s.provider(t)
	if err := p.Open(testCtx(t, 10*time.Second)); err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { _ = p.Close(context.Background()) })
	return p
}

func (s *bmcSim) provider(t testing.TB) *Provider {
	t.Helper()
	prov, err := New(s.target)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return prov.(*Provider)
}

// waitPower polls the machine until it reaches on, for power cycles that
// complete after a delay.
func waitPower(t testing.TB, m *machine.Machine, on bool) {
	t.Helper()
	for i := 0; i < 200; i++ {
		if m.PowerOn() == on {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("machine power on=%v never reached", on)
}

// memTrust is an in-memory bmc.TrustStore.
type memTrust struct {
	mu         sync.Mutex
	fp         map[string]string
	remembered int
}

func (m *memTrust) Lookup(name string, ap netip.AddrPort) (string, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	fp, ok := m.fp[name+"@"+ap.String()]
	return fp, ok
}

func (m *memTrust) Remember(name string, ap netip.AddrPort, fp string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fp == nil {
		m.fp = map[string]string{}
	}
	m.fp[name+"@"+ap.String()] = fp
	m.remembered++
	return nil
}
