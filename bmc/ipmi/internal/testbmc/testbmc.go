// Package testbmc runs go-ipmi's reference BMC in-process on a loopback
// address for rmm's IPMI tests and benchmarks, with what that BMC lacks
// added as handlers: Get System GUID, a System Event Log, sensor readings,
// a FRU inventory with a real BMC's read limits, and faults on the wire (lost, captured or mangled packets).
//
// It is test support, imported only from _test files; the provider never
// depends on it.
package testbmc

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	gobmc "github.com/bougou/go-ipmi/pkg/bmc"
	"github.com/bougou/go-ipmi/pkg/hal/mock"
	"github.com/bougou/go-ipmi/pkg/handlers"
	"github.com/bougou/go-ipmi/pkg/server"
	"github.com/bougou/go-ipmi/pkg/transport/udp"
	"github.com/bougou/go-ipmi/pkg/types"
)

// Default credentials of a test BMC.
const (
	User     = "admin"
	Password = "secret"
)

// Options configure a test BMC. The zero value is a BMC with cipher suites
// 3 and 17, user admin/secret at ADMINISTRATOR, power on, no console.
type Options struct {
	// Addr is where to listen; see Block for picking one.
	Addr netip.Addr
	// Suites the BMC accepts; nil means 3 and 17.
	Suites []int
	// MaxSessions replaces go-ipmi's fixed table of 4; 0 means 16.
	MaxSessions int
	// Console attaches a fake serial console for SOL.
	Console bool
	// PowerOff starts the chassis off.
	PowerOff bool
	// DropIn, when set, is asked for every packet the BMC receives (n
	// counts from 1) and drops it on true. DropOut does the same for
	// packets the BMC sends.
	DropIn, DropOut func(n int) bool
	// DelayOut, when set, holds the nth packet the BMC sends back for the
	// duration it returns (the BMC has already acted on the request): a
	// slow BMC, or one answer that is late.
	DelayOut func(n int) time.Duration
	// UserPrivilege is admin's maximum privilege; 0 means ADMINISTRATOR.
	UserPrivilege gobmc.PrivilegeLevel
	// GUID is the System GUID; zero means a fixed time-based GUID.
	GUID [16]byte
}

// BMC is a running test BMC.
type BMC struct {
	Addr    netip.AddrPort
	B       *gobmc.BMC
	HAL     *mock.HAL
	Console *Console
	SEL     *SEL
	Sensors *Sensors
	Chassis *Chassis
	FRU     *FRU

	conn *wireConn
	srv  *server.Server
	done chan struct{}

	mu   sync.Mutex
	guid [16]byte // what Get System GUID answers
}

// SetGUID changes the System GUID the BMC reports.
func (t *BMC) SetGUID(g [16]byte) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.guid = g
}

// Block hands out loopback addresses from a range so that parallel test
// binaries never share one. first and last are the third octet's bounds
// (rmm's bmc/ipmi tests own 127.0.10.x-127.0.19.x).
type Block struct {
	First, Last uint8
	next        atomic.Uint32
}

// Next returns the next unused address of the block.
func (b *Block) Next() netip.Addr {
	n := b.next.Add(1)
	span := uint32(b.Last-b.First+1) * 254
	n = (n - 1) % span
	return netip.AddrFrom4([4]byte{127, 0, b.First + uint8(n/254), uint8(n%254) + 1})
}

// Port is the UDP port test BMCs use: 623 when this process may bind it,
// else 16623 (tests must work unprivileged).
var Port = sync.OnceValue(func() uint16 {
	c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.19.254:623")))
	if err != nil {
		return 16623
	}
	c.Close()
	return 623
})

// DefaultGUID is a time-based GUID (version 1, 2024) in IPMI byte order.
var DefaultGUID = [16]byte{0x5e, 0x4d, 0x3c, 0x2b, 0x1a, 0x09, 0xa1, 0x8b, 0xd1, 0x11, 0x34, 0x12, 0x78, 0x56, 0x34, 0x12}

// Start runs a BMC until the test ends.
func Start(tb testing.TB, o Options) *BMC {
	tb.Helper()
	b, err := New(o)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(b.Close)
	return b
}

// New runs a BMC; the caller must Close it.
func New(o Options) (*BMC, error) {
	if !o.Addr.IsValid() {
		return nil, errors.New("testbmc: no address")
	}
	info := gobmc.DeviceInfo{
		DeviceID: 0x20, DeviceRevision: 1, FirmwareMajor: 1, FirmwareMinor: 0x02,
		IPMIVersion: 0x02, ManufacturerID: 343, ProductID: 0x0001,
	}
	guid := o.GUID
	if guid == ([16]byte{}) {
		guid = DefaultGUID
	}
	h := mock.New()
	h.Chassis().SetPower(context.Background(), !o.PowerOff)
	var console *Console
	if o.Console {
		// Before bmc.New: the SOL store looks for the console only then.
		console = &Console{FakeConsoleConn: &mock.FakeConsoleConn{}}
		h.SetConsole(&mock.Console{Conn: console})
	}
	b := gobmc.New(info, guid, h)
	max := o.MaxSessions
	if max == 0 {
		max = 16
	}
	b.Sessions = gobmc.NewSessionStoreWithOptions(b.Clock(), gobmc.WithMaxSessions(max))
	b.Sessions.SetOnRemove(b.SOL.DeactivateBySession)
	if o.Suites != nil {
		ids := make([]types.CipherSuiteID, len(o.Suites))
		for i, s := range o.Suites {
			ids[i] = types.CipherSuiteID(s)
		}
		b.SetCipherSuites(ids)
	}
	u, err := b.Users.Add(2, User)
	if err != nil {
		return nil, err
	}
	u.SetPassword([]byte(Password))
	u.Enabled = true
	priv := o.UserPrivilege
	if priv == 0 {
		priv = gobmc.PrivilegeLevelAdministrator
	}
	u.ChannelAccess[1] = gobmc.UserChannelAccess{MaxPrivilege: priv, Enabled: true}

	t := &BMC{B: b, HAL: h, SEL: &SEL{}, Sensors: &Sensors{Readings: map[uint8][]byte{}}, Chassis: &Chassis{}, FRU: &FRU{}, done: make(chan struct{})}
	t.guid = guid
	t.Console = console
	reg := handlers.NewRegistry()
	handlers.RegisterAllHandlers(reg)
	t.register(reg)

	ap := netip.AddrPortFrom(o.Addr, Port())
	uc, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(ap))
	if err != nil {
		return nil, fmt.Errorf("testbmc: listen %s: %w", ap, err)
	}
	t.Addr = ap
	t.conn = &wireConn{PacketConn: udp.Wrap(uc), udp: uc, dropIn: o.DropIn, dropOut: o.DropOut, delayOut: o.DelayOut}
	t.srv = server.NewServer(b, t.conn, server.WithHandlerRegistry(reg))
	go func() {
		defer close(t.done)
		_ = t.srv.Serve(context.Background())
	}()
	return t, nil
}

// Close stops the BMC and waits for its serve loop.
func (t *BMC) Close() {
	_ = t.srv.Close()
	<-t.done
}

// Sessions is the number of sessions (active or half-open) in the BMC's
// table.
func (t *BMC) Sessions() int { return t.B.Sessions.Count() }

// WaitSessions waits up to d for the session table to hold want sessions
// (a Close Session is answered before the table entry goes).
func (t *BMC) WaitSessions(want int, d time.Duration) int {
	end := time.Now().Add(d)
	for {
		n := t.Sessions()
		if n == want || time.Now().After(end) {
			return n
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// PowerOn reports the mock chassis power.
func (t *BMC) PowerOn() bool {
	on, _ := t.HAL.Chassis().PowerState(context.Background())
	return on
}

// Vanish closes the BMC's socket without a word, as a BMC that loses power
// or its network does: no SOL deactivation, no answers; the kernel then
// refuses packets to the port (ICMP port unreachable).
func (t *BMC) Vanish() { _ = t.conn.udp.Close() }

// Blackhole makes the BMC drop everything, in and out, from now on (or
// stop doing so), like a link that went down without an ICMP word.
func (t *BMC) Blackhole(on bool) { t.conn.blackhole.Store(on) }

// Inbound returns copies of every packet the BMC received (captured before
// any drop), in order.
func (t *BMC) Inbound() [][]byte { return t.conn.captured() }

// IsRefused reports whether err is ECONNREFUSED (used by tests to pick an
// address nothing listens on).
func IsRefused(err error) bool { return errors.Is(err, syscall.ECONNREFUSED) }

// Console is go-ipmi's fake serial console with a race-free break count
// (the fake's own counter is a bare field).
type Console struct {
	*mock.FakeConsoleConn
	mu     sync.Mutex
	breaks int
	limit  int
}

// SendBreak counts the break and passes it on.
func (c *Console) SendBreak(ctx context.Context) error {
	c.mu.Lock()
	c.breaks++
	c.mu.Unlock()
	return c.FakeConsoleConn.SendBreak(ctx)
}

// SetWriteLimit makes the console take at most n bytes per write (0: no
// limit), like a serial port whose buffer is full: the BMC then accepts
// keystroke packets partly.
func (c *Console) SetWriteLimit(n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.limit = n
}

// Write applies the limit, then hands the bytes to the fake console.
func (c *Console) Write(p []byte) (int, error) {
	c.mu.Lock()
	if c.limit > 0 && len(p) > c.limit {
		p = p[:c.limit]
	}
	c.mu.Unlock()
	return c.FakeConsoleConn.Write(p)
}

// Breaks returns how many breaks reached the console.
func (c *Console) Breaks() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.breaks
}
