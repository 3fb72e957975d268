// Package sim runs a simulated fleet in one process: for every host a
// simulated machine (sim/machine), an IPMI BMC (sim/ipmisim) and a Redfish
// BMC (sim/redfishsim) on the host's own BMC address. All of 127.0.0.0/8 is
// loopback on Linux, so 127.0.3.17:623 is a real, distinct endpoint, and a
// thousand hosts need no network setup.
//
// Tests of rmm start a fleet in-process, point rmm at its addresses, inject
// faults, and read back what the BMCs saw (power actions, SEL, sessions
// opened and closed); `rmm sim` serves one from an inventory; `make bench`
// starts a thousand. Nothing here resolves names: every address is a
// netip value.
package sim

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/rmm-project/rmm/sim/ipmisim"
	"github.com/rmm-project/rmm/sim/machine"
	"github.com/rmm-project/rmm/sim/redfishsim"
)

// Scenario is a way a simulated host misbehaves (or is unwell).
type Scenario string

// Scenarios. Each applies to both protocols where it makes sense.
const (
	// Dead: the BMC never answers. IPMI: the UDP socket is bound and every
	// packet is dropped (no ICMP unreachable). Redfish: TCP is accepted,
	// nothing (not even TLS) is answered.
	Dead Scenario = "dead"
	// Slow: every answer comes HostSpec.Delay late (default 3 s). IPMI
	// delays every response packet, handshake included, so a session open
	// costs four delays; Redfish delays every response.
	Slow Scenario = "slow"
	// WrongCredentials: the BMC's account has a different password than
	// HostSpec.Password, which is what the inventory holds (see
	// Host.BMCPassword).
	WrongCredentials Scenario = "wrong-credentials"
	// Panicked: power on, Linux's OS Critical Stop and panic-string
	// records in the SEL, the panic trace on the console.
	Panicked Scenario = "panicked"
	// SOLBusy: the IPMI SOL payload is held by a phantom session of
	// another user from another address, which Get Payload Activation
	// Status / Get Payload Instance Info / Get Session Info report and a
	// forced deactivation takes over.
	SOLBusy Scenario = "sol-busy"
	// Overheat: the CPU temperature reads above its upper critical
	// threshold.
	Overheat Scenario = "overheat"
	// Replaced: the machine reports an identity (GUID, UUID, serial) other
	// than HostSpec.Identity, which is what the inventory expects.
	Replaced Scenario = "replaced"
)

// Scenarios lists every scenario, for validation and help texts.
var Scenarios = []Scenario{Dead, Slow, WrongCredentials, Panicked, SOLBusy, Overheat, Replaced}

// DefaultSlowDelay is the Slow scenario's delay when HostSpec.Delay is 0.
const DefaultSlowDelay = 3 * time.Second

// HostSpec describes one simulated host.
type HostSpec struct {
	Name string
	Addr netip.Addr
	// IPMIPort is the IPMI UDP port; 0 means no IPMI endpoint unless IPMI
	// is set, which then uses DefaultIPMIPort().
	IPMIPort uint16
	// RedfishPort is the HTTPS port; 0 likewise with Redfish and
	// DefaultRedfishPort().
	RedfishPort uint16
	// IPMI and Redfish say which endpoints to serve.
	IPMI, Redfish bool
	// Vendor picks the Redfish tree (dell, hpe, lenovo, supermicro, dmtf)
	// and the IPMI manufacturer; empty means dmtf.
	Vendor string
	// Username and Password are the account the BMC accepts (plain: it is
	// a simulator), unless WrongCredentials changes the password.
	Username string
	Password string
	// Identity is the machine's identity, and what the inventory expects;
	// zero means machine.DerivedIdentity(Name). Replaced makes the machine
	// report another one.
	Identity machine.Identity
	// Scenarios apply from the start.
	Scenarios []Scenario
	// Delay is the Slow scenario's delay (0 = DefaultSlowDelay).
	Delay time.Duration
	// PowerOff starts the machine powered off (Panicked overrides it).
	PowerOff bool
}

// Has reports whether the spec lists scenario s.
func (h HostSpec) Has(s Scenario) bool { return slices.Contains(h.Scenarios, s) }

// Host is one running simulated host.
type Host struct {
	Spec    HostSpec
	Machine *machine.Machine
	// IPMI is nil when the host serves no IPMI.
	IPMI *ipmisim.BMC
	// Redfish is nil when the host serves no Redfish.
	Redfish *redfishsim.Server

	bmcPassword string
}

// IPMIAddr is the IPMI endpoint, the zero value when there is none.
func (h *Host) IPMIAddr() netip.AddrPort {
	if h.IPMI == nil {
		return netip.AddrPort{}
	}
	return h.IPMI.Addr()
}

// RedfishAddr is the Redfish endpoint, the zero value when there is none.
func (h *Host) RedfishAddr() netip.AddrPort {
	if h.Redfish == nil {
		return netip.AddrPort{}
	}
	return h.Redfish.Addr()
}

// BMCPassword is the password the BMC really accepts: Spec.Password, or
// another one under WrongCredentials (so a test can still log in).
func (h *Host) BMCPassword() string { return h.bmcPassword }

// Expected is the identity the inventory expects for this host: Spec's, or
// the derived one. Under Replaced the machine reports something else.
func (h *Host) Expected() machine.Identity { return expectedIdentity(h.Spec) }

// OpenSessions counts the host's established IPMI sessions and live
// Redfish sessions.
func (h *Host) OpenSessions() (ipmi, redfish int) {
	if h.IPMI != nil {
		ipmi = h.IPMI.OpenSessions()
	}
	if h.Redfish != nil {
		redfish = h.Redfish.OpenSessions()
	}
	return ipmi, redfish
}

// SetDead kills the host's BMC, both protocols, or brings it back, at run
// time: the Dead scenario switched on and off in the middle of a test.
func (h *Host) SetDead(dead bool) {
	if h.IPMI != nil {
		h.IPMI.SetDead(dead)
	}
	if h.Redfish != nil {
		h.Redfish.SetDead(dead)
	}
}

func (h *Host) close() error {
	var errs []error
	if h.IPMI != nil {
		errs = append(errs, h.IPMI.Close())
	}
	if h.Redfish != nil {
		errs = append(errs, h.Redfish.Close())
	}
	h.Machine.Close()
	return errors.Join(errs...)
}

func (h *Host) String() string {
	var eps []string
	if ap := h.IPMIAddr(); ap.IsValid() {
		eps = append(eps, "ipmi "+ap.String())
	}
	if ap := h.RedfishAddr(); ap.IsValid() {
		eps = append(eps, "redfish "+ap.String())
	}
	return fmt.Sprintf("%s (%s)", h.Spec.Name, strings.Join(eps, ", "))
}

// Option tunes a fleet.
type Option func(*options)

type options struct {
	concurrency    int
	maxSessions    int
	sessionTimeout time.Duration
	cycleDelay     time.Duration
	solReplay      int
	redfishLog     io.Writer
	certDir        string
}

// WithConcurrency bounds how many hosts start (and close) at once
// (default 8 per CPU).
func WithConcurrency(n int) Option { return func(o *options) { o.concurrency = n } }

// WithMaxSessions sets every IPMI BMC's session table size (default
// ipmisim.DefaultMaxSessions; a tiny one makes "table full" real).
func WithMaxSessions(n int) Option { return func(o *options) { o.maxSessions = n } }

// WithSessionTimeout sets the IPMI inactivity timeout (default 60 s), for
// tests that watch a leaked session expire.
func WithSessionTimeout(d time.Duration) Option { return func(o *options) { o.sessionTimeout = d } }

// WithCycleDelay sets how long a power cycle keeps machines off.
func WithCycleDelay(d time.Duration) Option { return func(o *options) { o.cycleDelay = d } }

// WithSOLReplay makes a new SOL session receive the last n bytes the
// console printed (default 4 KiB, so `rmm console` on a panicked host shows
// the panic, as a BMC with a serial buffer does); 0 disables it.
func WithSOLReplay(n int) Option { return func(o *options) { o.solReplay = n } }

// WithRedfishLog sends one line per Redfish request to w (safe for
// concurrent use).
func WithRedfishLog(w io.Writer) Option { return func(o *options) { o.redfishLog = w } }

// Fleet is a running simulated fleet.
type Fleet struct {
	hosts  []*Host
	byName map[string]*Host
	opts   options

	closeOnce sync.Once
	closeErr  error
}

// Start starts every host, concurrently, and returns when all serve. On
// any failure (a bind error, say) it closes what started and returns an
// error naming the host and address. ctx bounds the start only; the fleet
// runs until Close.
func Start(ctx context.Context, specs []HostSpec, opts ...Option) (*Fleet, error) {
	o := options{concurrency: 8 * runtime.GOMAXPROCS(0), solReplay: 4 << 10}
	for _, opt := range opts {
		opt(&o)
	}
	o.concurrency = max(1, o.concurrency)
	if err := checkSpecs(specs); err != nil {
		return nil, err
	}
	f := &Fleet{hosts: make([]*Host, len(specs)), byName: make(map[string]*Host, len(specs)), opts: o}

	errs := make([]error, len(specs))
	startCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	forEach(len(specs), o.concurrency, func(i int) {
		if startCtx.Err() != nil {
			errs[i] = startCtx.Err()
			return
		}
		h, err := startHost(specs[i], o)
		if err != nil {
			errs[i] = err
			cancel()
			return
		}
		f.hosts[i] = h
	})
	var first error
	for i, err := range errs {
		if err != nil && !errors.Is(err, context.Canceled) {
			first = fmt.Errorf("sim: host %s: %w", specs[i].Name, err)
			break
		}
	}
	if first == nil && ctx.Err() != nil {
		first = fmt.Errorf("sim: start: %w", ctx.Err())
	}
	if first != nil {
		f.closeStarted()
		return nil, first
	}
	for _, h := range f.hosts {
		f.byName[h.Spec.Name] = h
	}
	return f, nil
}

// checkSpecs refuses what cannot start: duplicate names or endpoints,
// missing addresses or users, unknown scenarios.
func checkSpecs(specs []HostSpec) error {
	names := map[string]bool{}
	endpoints := map[string]string{}
	for _, s := range specs {
		if s.Name == "" {
			return fmt.Errorf("sim: a host has no name (address %s)", s.Addr)
		}
		if names[s.Name] {
			return fmt.Errorf("sim: host %s: duplicate name", s.Name)
		}
		names[s.Name] = true
		if !s.Addr.IsValid() {
			return fmt.Errorf("sim: host %s: no BMC address", s.Name)
		}
		if s.Username == "" {
			return fmt.Errorf("sim: host %s: no BMC user name", s.Name)
		}
		for _, sc := range s.Scenarios {
			if !slices.Contains(Scenarios, sc) {
				return fmt.Errorf("sim: host %s: unknown scenario %q (known: %v)", s.Name, sc, Scenarios)
			}
		}
		for _, ep := range endpointsOf(s) {
			if other, dup := endpoints[ep]; dup {
				return fmt.Errorf("sim: host %s: endpoint %s already used by host %s", s.Name, ep, other)
			}
			endpoints[ep] = s.Name
		}
	}
	return nil
}

func endpointsOf(s HostSpec) []string {
	var eps []string
	if p := ipmiPort(s); p != 0 {
		eps = append(eps, netip.AddrPortFrom(s.Addr, p).String()+"/udp")
	}
	if p := redfishPort(s); p != 0 {
		eps = append(eps, netip.AddrPortFrom(s.Addr, p).String()+"/tcp")
	}
	return eps
}

func ipmiPort(s HostSpec) uint16 {
	switch {
	case s.IPMIPort != 0:
		return s.IPMIPort
	case s.IPMI:
		return DefaultIPMIPort()
	}
	return 0
}

func redfishPort(s HostSpec) uint16 {
	switch {
	case s.RedfishPort != 0:
		return s.RedfishPort
	case s.Redfish:
		return DefaultRedfishPort()
	}
	return 0
}

func expectedIdentity(s HostSpec) machine.Identity {
	if s.Identity == (machine.Identity{}) {
		return machine.DerivedIdentity(s.Name)
	}
	return s.Identity
}

// replacedIdentity is what a Replaced host reports: another machine's.
func replacedIdentity(s HostSpec) machine.Identity {
	return machine.DerivedIdentity(s.Name + " (replacement)")
}

// otherPassword is the password a WrongCredentials BMC accepts: close to
// the inventory's, never equal, at most 20 bytes (IPMI's limit).
func otherPassword(p string) string {
	q := p + "-rotated"
	if len(q) > 20 {
		q = q[:20]
	}
	if q == p {
		last := byte('x')
		if q[19] == 'x' {
			last = 'y'
		}
		q = q[:19] + string(last)
	}
	return q
}

func startHost(s HostSpec, o options) (*Host, error) {
	id := expectedIdentity(s)
	if s.Has(Replaced) {
		id = replacedIdentity(s)
	}
	mopts := []machine.Option{machine.WithPower(!s.PowerOff)}
	if o.cycleDelay > 0 {
		mopts = append(mopts, machine.WithCycleDelay(o.cycleDelay))
	}
	m := machine.New(s.Name, id, mopts...)
	if s.Has(Panicked) {
		m.Panic()
	}
	if s.Has(Overheat) {
		m.Overheat()
	}
	h := &Host{Spec: s, Machine: m, bmcPassword: s.Password}
	if s.Has(WrongCredentials) {
		h.bmcPassword = otherPassword(s.Password)
	}
	delay := time.Duration(0)
	if s.Has(Slow) {
		delay = s.Delay
		if delay == 0 {
			delay = DefaultSlowDelay
		}
	}

	if p := ipmiPort(s); p != 0 {
		b, err := ipmisim.Start(ipmisim.Config{
			Addr:           netip.AddrPortFrom(s.Addr, p),
			Machine:        m,
			Username:       s.Username,
			Password:       h.bmcPassword,
			Vendor:         s.Vendor,
			MaxSessions:    o.maxSessions,
			SessionTimeout: o.sessionTimeout,
			SOLBusy:        s.Has(SOLBusy),
			SOLReplay:      o.solReplay,
			Faults:         ipmisim.Faults{Dead: s.Has(Dead), Delay: delay},
		})
		if err != nil {
			m.Close()
			return nil, err
		}
		h.IPMI = b
	}
	if p := redfishPort(s); p != 0 {
		srv, err := startRedfish(s, h, netip.AddrPortFrom(s.Addr, p), delay, o)
		if err != nil {
			_ = h.close()
			return nil, err
		}
		h.Redfish = srv
	}
	return h, nil
}

// forEach runs fn(0..n-1) on at most limit goroutines and waits.
func forEach(n, limit int, fn func(i int)) {
	var wg sync.WaitGroup
	next := make(chan int)
	for range min(n, limit) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				fn(i)
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
}

// Hosts returns every host in spec order.
func (f *Fleet) Hosts() []*Host { return slices.Clone(f.hosts) }

// Host returns the host named name, or nil.
func (f *Fleet) Host(name string) *Host { return f.byName[name] }

// OpenSessions counts established IPMI sessions and live Redfish sessions
// across the fleet: what a client that cleans up leaves at zero. The
// sol-busy phantom is not counted.
func (f *Fleet) OpenSessions() int {
	n := 0
	for _, h := range f.hosts {
		i, r := h.OpenSessions()
		n += i + r
	}
	return n
}

// WaitSessionsClosed polls until OpenSessions is zero, for at most ctx's
// deadline (30 s when it has none). The error names the hosts that still
// hold sessions.
func (f *Fleet) WaitSessionsClosed(ctx context.Context) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
	}
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		if f.OpenSessions() == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return f.sessionsError(ctx.Err())
		case <-tick.C:
		}
	}
}

func (f *Fleet) sessionsError(cause error) error {
	var holders []string
	for _, h := range f.hosts {
		i, r := h.OpenSessions()
		if i+r == 0 {
			continue
		}
		if len(holders) == 10 {
			holders = append(holders, "...")
			break
		}
		holders = append(holders, fmt.Sprintf("%s: %d ipmi, %d redfish", h, i, r))
	}
	if len(holders) == 0 {
		return nil
	}
	return fmt.Errorf("sim: sessions still open (%w): %s", cause, strings.Join(holders, "; "))
}

// Close stops every host and releases every socket; all goroutines have
// stopped when it returns. It is idempotent.
func (f *Fleet) Close() error {
	f.closeOnce.Do(func() { f.closeErr = f.closeStarted() })
	return f.closeErr
}

func (f *Fleet) closeStarted() error {
	errs := make([]error, len(f.hosts))
	forEach(len(f.hosts), max(1, f.opts.concurrency), func(i int) {
		if h := f.hosts[i]; h != nil {
			if err := h.close(); err != nil {
				errs[i] = fmt.Errorf("%s: %w", h, err)
			}
		}
	})
	return errors.Join(errs...)
}
