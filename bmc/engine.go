package bmc

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	bmclibbmc "github.com/bmc-toolbox/bmclib/v2/bmc"
	"github.com/bmc-toolbox/bmclib/v2/providers"
	"github.com/go-logr/logr"
	"github.com/jacobweinstock/registrar"
)

// CloseTimeout bounds how long closing a session may take, even after the
// caller's context was cancelled (Ctrl-C): a session left open on a BMC
// holds one of its few slots for a minute or more.
const CloseTimeout = 2 * time.Second

// Engine opens sessions to BMCs. It holds the provider constructors rmm's
// main package wires in, one per protocol; nothing else. An Engine is safe
// for concurrent use: every Open builds its own providers.
type Engine struct {
	// Providers builds a provider per protocol. ProtocolIPMItool may be
	// absent (no ipmitool binary).
	Providers map[Protocol]ProviderFunc
}

// attempt is one protocol to try.
type attempt struct {
	proto    Protocol
	provider Provider
}

// features is what rmm's providers offer through bmclib's registry.
var features = registrar.Features{providers.FeaturePowerState, providers.FeaturePowerSet}

// noTimeout is the per-provider timeout handed to bmclib's functions: the
// real limit is always ctx's deadline, which rmm shares out itself.
const noTimeout = 24 * time.Hour

// Open connects to t, trying its protocols in order until one opens a
// session. A failed protocol's session is never left open. When IPMI fails
// with "unsupported" or a protocol error and an ipmitool provider is wired
// in, ipmitool is tried last (it speaks cipher suites and IPMI 1.5 that the
// native provider does not); it is not tried after a timeout or an
// authentication failure, where it could only waste the deadline.
//
// A refused login or a changed TLS certificate ends the attempts at once.
//
// Each attempt gets an equal share of the time left, the last one all of
// it, so a host whose IPMI is dead still gets its Redfish attempt, and a
// dead host costs one deadline, not one per protocol.
//
// The providers are registered in a bmclib registry (jacobweinstock/
// registrar, as bmclib.WithRegistry uses) and driven through bmclib's
// provider functions (OpenConnectionFromInterfaces, Get/SetPowerState...,
// CloseConnectionFromInterfaces), one provider at a time in the host's
// order. A full bmclib.Client per host is not built: it adds an HTTP
// client with a cookie jar, a second registry and a tracer that rmm never
// uses, 16% of rmm power status's CPU on 1,000 BMCs (make bench), and its
// For() filter is undone by its own default timeout in v2.3.5, so Open
// would open every provider at once.
func (e *Engine) Open(ctx context.Context, t Target) (*Conn, error) {
	if !t.Addr.IsValid() {
		return nil, t.Wrap("open", fmt.Errorf("no BMC address: %w", ErrHostname))
	}
	order := t.ProtocolOrder()
	var attempts []attempt
	for _, p := range order {
		mk := e.Providers[p]
		if mk == nil {
			return nil, t.Wrap("open", fmt.Errorf("%w: protocol %q", ErrUnsupported, p))
		}
		prov, err := mk(t)
		if err != nil {
			return nil, t.Wrap("open", err)
		}
		attempts = append(attempts, attempt{p, prov})
	}

	reg := registrar.NewRegistry(registrar.WithLogger(logr.Discard()))
	for _, a := range attempts {
		reg.Register(a.provider.Name(), string(a.proto), features, nil, a.provider)
	}

	var errs []error
	tried := map[Protocol]bool{}
	for i := 0; i < len(attempts); i++ {
		a := attempts[i]
		tried[a.proto] = true
		if err := ctx.Err(); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", a.proto, err))
			break
		}
		actx, cancel := shareOfDeadline(ctx, len(attempts)-i)
		drivers := reg.For(a.provider.Name())
		_, _, err := bmclibbmc.OpenConnectionFromInterfaces(actx, noTimeout, registrar.Registry{Drivers: drivers}.GetDriverInterfaces())
		cancel()
		if err == nil {
			return &Conn{Target: t, provider: a.provider, protocol: a.proto, engine: e, driver: []interface{}{a.provider}}, nil
		}
		err = unwrapBmclib(err)
		errs = append(errs, fmt.Errorf("%s: %w", a.proto, err))
		// No fallback after a refused login or a changed certificate: the
		// same credentials would be refused again (and repeated failures
		// can lock the BMC account), and a certificate that changed is a
		// warning to read, not to route around.
		if ctx.Err() != nil || errors.Is(err, ErrAuth) || errors.Is(err, ErrTLSPin) {
			break
		}
		// Last resort: ipmitool after native IPMI could not speak to the BMC.
		if a.proto == ProtocolIPMI && !tried[ProtocolIPMItool] && e.Providers[ProtocolIPMItool] != nil &&
			(errors.Is(err, ErrUnsupported) || errors.Is(err, ErrProtocol)) {
			if prov, perr := e.Providers[ProtocolIPMItool](t); perr == nil {
				reg.Register(prov.Name(), string(ProtocolIPMItool), features, nil, prov)
				attempts = append(attempts, attempt{ProtocolIPMItool, prov})
			}
		}
	}
	return nil, t.Wrap("open", joinAttempts(errs))
}

// shareOfDeadline returns a context with 1/n of the time left on ctx.
func shareOfDeadline(ctx context.Context, n int) (context.Context, context.CancelFunc) {
	dl, ok := ctx.Deadline()
	if !ok || n <= 1 {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, time.Until(dl)/time.Duration(n))
}

// unwrapBmclib digs the provider's own error out of bmclib's wrapping
// (hashicorp/go-multierror, and pkg/errors' "provider: NAME: " message) so
// the text is the provider's and errors.Is still finds rmm's sentinels.
func unwrapBmclib(err error) error {
	var me interface{ WrappedErrors() []error }
	if !errors.As(err, &me) {
		return err
	}
	var keep []error
	for _, e := range me.WrappedErrors() {
		if e == nil || strings.HasPrefix(e.Error(), "no ") && strings.HasSuffix(e.Error(), "implementations found") ||
			strings.HasPrefix(e.Error(), "failed to ") {
			continue
		}
		if u := errors.Unwrap(e); u != nil && strings.HasPrefix(e.Error(), "provider: ") {
			e = u
		}
		keep = append(keep, e)
	}
	switch len(keep) {
	case 0:
		return err
	case 1:
		return keep[0]
	}
	return errors.Join(keep...)
}

// joinAttempts reports one protocol's error as is, several as a list.
func joinAttempts(errs []error) error {
	if len(errs) == 1 {
		return errors.Unwrap(errs[0]) // "ipmi: x" -> x; the protocol is obvious
	}
	return errors.Join(errs...)
}

// Conn is an open session to one BMC over one protocol. Its methods are
// serialised: a Conn may be shared by goroutines, but calls run one at a
// time, as BMC sessions require.
type Conn struct {
	Target   Target
	provider Provider
	protocol Protocol
	engine   *Engine
	// driver is the open provider as bmclib's functions take it.
	driver []interface{}

	mu     sync.Mutex
	closed bool
}

// Protocol says which protocol answered.
func (c *Conn) Protocol() Protocol { return c.protocol }

// ProviderName is the registry name of the provider in use.
func (c *Conn) ProviderName() string { return c.provider.Name() }

// Close ends the session. It uses its own deadline (CloseTimeout) when ctx
// is already done, so Ctrl-C still closes every session. Safe to call more
// than once.
func (c *Conn) Close(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil
	}
	c.closed = true
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), CloseTimeout)
	defer cancel()
	_, err := bmclibbmc.CloseConnectionFromInterfaces(cctx, c.driver)
	if err != nil {
		err = unwrapBmclib(err)
	}
	return c.Target.Wrap("close", err)
}

// PowerState reads the chassis power state.
func (c *Conn) PowerState(ctx context.Context) (PowerState, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s, _, err := bmclibbmc.GetPowerStateFromInterfaces(ctx, noTimeout, c.driver)
	if err != nil {
		return PowerUnknown, c.Target.Wrap("power status", unwrapBmclib(err))
	}
	return ParsePowerState(s), nil
}

// SetPower performs a power action with the semantics documented on
// PowerAction.
func (c *Conn) SetPower(ctx context.Context, a PowerAction) error {
	switch a {
	case ActionOn, ActionOff, ActionCycle, ActionReset, ActionSoft:
	default:
		return c.Target.Wrap("power", NotSent(fmt.Errorf("%w: unknown power action %q", ErrUnsupported, a)))
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	// A cancelled run (Ctrl-C) must not start an action it was about to
	// send.
	if err := ctx.Err(); err != nil {
		return c.Target.Wrap("power "+string(a), err)
	}
	ok, _, err := bmclibbmc.SetPowerStateFromInterfaces(ctx, noTimeout, string(a), c.driver)
	if err != nil {
		return c.Target.Wrap("power "+string(a), unwrapBmclib(err))
	}
	if !ok {
		return c.Target.Wrap("power "+string(a), errors.New("the BMC did not accept the request"))
	}
	return nil
}

// Identity reads the machine's identity.
func (c *Conn) Identity(ctx context.Context) (Identity, error) {
	r, ok := c.provider.(IdentityReader)
	if !ok {
		return Identity{}, c.unsupported("identity")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	id, err := r.Identity(ctx)
	return id, c.Target.Wrap("identity", err)
}

// VerifyIdentity reads the identity and compares it with Target.Expect. It
// returns the identity read and an ErrIdentityMismatch error when they
// differ. With nothing expected it reads nothing and returns nil.
func (c *Conn) VerifyIdentity(ctx context.Context) (Identity, error) {
	if c.Target.Expect.IsZero() {
		return Identity{}, nil
	}
	id, err := c.Identity(ctx)
	if err != nil {
		return id, err
	}
	return id, c.Target.Wrap("identity check", c.Target.Expect.Mismatch(id))
}

// SEL reads the System Event Log, oldest first.
func (c *Conn) SEL(ctx context.Context) ([]SELEntry, error) {
	r, ok := c.provider.(SELReader)
	if !ok {
		return nil, c.unsupported("sel")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	es, err := r.SEL(ctx)
	return es, c.Target.Wrap("sel", err)
}

// ClearSEL clears the System Event Log.
func (c *Conn) ClearSEL(ctx context.Context) error {
	r, ok := c.provider.(SELClearer)
	if !ok {
		return c.unsupported("sel clear")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.Target.Wrap("sel clear", r.ClearSEL(ctx))
}

// Health reads rollups and sensors.
func (c *Conn) Health(ctx context.Context) (Health, error) {
	r, ok := c.provider.(HealthReader)
	if !ok {
		return Health{}, c.unsupported("health")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	h, err := r.Health(ctx)
	return h, c.Target.Wrap("health", err)
}

// ConsoleInfo lists the console transports the BMC advertises. Over IPMI
// the answer is IPMI SOL on the session's own endpoint.
func (c *Conn) ConsoleInfo(ctx context.Context) (ConsoleInfo, error) {
	if r, ok := c.provider.(ConsoleInfoReader); ok {
		c.mu.Lock()
		defer c.mu.Unlock()
		ci, err := r.ConsoleInfo(ctx)
		return ci, c.Target.Wrap("console info", err)
	}
	if _, ok := c.provider.(ConsoleOpener); ok {
		return ConsoleInfo{Transports: []ConsoleTransport{{Kind: "ipmi-sol", Enabled: true, Port: int(c.Target.IPMIAddr().Port())}}}, nil
	}
	return ConsoleInfo{}, c.unsupported("console info")
}

func (c *Conn) unsupported(op string) error {
	return c.Target.Wrap(op, fmt.Errorf("%w over %s", ErrUnsupported, c.protocol))
}

// Console opens a Serial-over-LAN console. Over IPMI it uses the open
// session. A Redfish session has no serial console of its own: rmm reads
// what the BMC advertises and, when it offers IPMI SOL, opens an IPMI
// session for the console (to the advertised port) with the same
// credentials. Otherwise the error lists what the BMC does offer (an SSH
// console and its entry command, say) so on-call knows where to go.
func (c *Conn) Console(ctx context.Context, opts ConsoleOptions) (Console, error) {
	if co, ok := c.provider.(ConsoleOpener); ok {
		c.mu.Lock()
		defer c.mu.Unlock()
		con, err := co.Console(ctx, opts)
		return con, c.Target.Wrap("console", err)
	}
	info, err := c.ConsoleInfo(ctx)
	if err != nil {
		return nil, err
	}
	var sol *ConsoleTransport
	for i, tr := range info.Transports {
		if tr.Kind == "ipmi-sol" && tr.Enabled {
			sol = &info.Transports[i]
			break
		}
	}
	mk := c.engine.Providers[ProtocolIPMI]
	if sol == nil || mk == nil {
		return nil, c.Target.Wrap("console", &hinted{
			err:  fmt.Errorf("%w: the BMC advertises no IPMI Serial-over-LAN", ErrUnsupported),
			hint: describeTransports(info),
		})
	}
	t := c.Target
	if sol.Port > 0 && sol.Port < 65536 {
		t.IPMIPort = uint16(sol.Port)
	}
	p, err := mk(t)
	if err != nil {
		return nil, t.Wrap("console", err)
	}
	if err := p.Open(ctx); err != nil {
		return nil, t.Wrap("console: ipmi session", err)
	}
	co, ok := p.(ConsoleOpener)
	if !ok {
		closeProvider(ctx, p)
		return nil, t.Wrap("console", ErrUnsupported)
	}
	con, err := co.Console(ctx, opts)
	if err != nil {
		closeProvider(ctx, p)
		return nil, t.Wrap("console", err)
	}
	return &ownedConsole{Console: con, owner: p}, nil
}

func closeProvider(ctx context.Context, p Provider) {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), CloseTimeout)
	defer cancel()
	_ = p.Close(cctx)
}

// ownedConsole closes the IPMI session it was opened on.
type ownedConsole struct {
	Console
	owner Provider
}

func (o *ownedConsole) Close(ctx context.Context) error {
	err := o.Console.Close(ctx)
	closeProvider(ctx, o.owner)
	return err
}

// hinted is an error that carries its own hint line.
type hinted struct {
	err  error
	hint string
}

func (h *hinted) Error() string { return h.err.Error() }
func (h *hinted) Unwrap() error { return h.err }
func (h *hinted) Hint() string  { return h.hint }

// Hinted attaches a hint to err for the CLI to print under it.
func Hinted(err error, hint string) error {
	if err == nil {
		return nil
	}
	return &hinted{err: err, hint: hint}
}

func describeTransports(info ConsoleInfo) string {
	if len(info.Transports) == 0 {
		return "the BMC advertises no console transport over Redfish"
	}
	s := "the BMC advertises:"
	for _, tr := range info.Transports {
		state := "disabled"
		if tr.Enabled {
			state = "enabled"
		}
		s += fmt.Sprintf(" %s (%s", tr.Kind, state)
		if tr.Port > 0 {
			s += fmt.Sprintf(", port %d", tr.Port)
		}
		if tr.EntryCommand != "" {
			s += fmt.Sprintf(", then type %q", tr.EntryCommand)
		}
		s += ")"
	}
	return s
}
