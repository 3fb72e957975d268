// Package machine is the simulated server behind a simulated BMC: chassis
// power with real transitions, a System Event Log, a serial console and the
// machine's identity. One Machine is shared by the IPMI and the Redfish side
// of a simulated BMC, as one chassis is shared by both on real hardware, so
// a power cycle over Redfish shows up in IPMI's Get Chassis Status.
package machine

import (
	"crypto/md5"
	"fmt"
	"strings"
	"sync"
	"time"
)

// Identity is what the machine reports about itself.
type Identity struct {
	// GUID is the IPMI System GUID as ipmitool prints it (lowercase
	// 8-4-4-4-12).
	GUID string
	// UUID is the SMBIOS UUID Redfish reports.
	UUID string
	// Serial is the system serial number.
	Serial string
}

// DerivedIdentity returns a stable identity for a host name, so a simulated
// fleet is the same machine on every start.
func DerivedIdentity(name string) Identity {
	sum := md5.Sum([]byte("rmm-sim:" + name))
	u := fmt.Sprintf("%x-%x-%x-%x-%x", sum[0:4], sum[4:6], sum[6:8], sum[8:10], sum[10:16])
	return Identity{GUID: u, UUID: u, Serial: "SIM" + strings.ToUpper(fmt.Sprintf("%x", sum[12:16]))}
}

// SELRecord is one event in the machine's log, in IPMI terms. The Redfish
// side renders the same records as LogEntry resources.
type SELRecord struct {
	ID   uint16
	Time time.Time
	// RecordType is 0x02 for a system event record, 0xC0-0xFF for OEM.
	RecordType uint8
	// GeneratorID is the IPMI generator (0x0041 for the Linux kernel's
	// panic event: software ID 0x20, LUN 0... as ipmi_msghandler logs it).
	GeneratorID uint16
	SensorType  uint8
	SensorNum   uint8
	EventType   uint8 // event/reading type; bit 7 = deassertion
	EventData   [3]byte
	// OEM holds the 13 OEM bytes of a non-system record (0xC0-0xDF
	// timestamped OEM, 0xE0-0xFF non-timestamped), e.g. Linux's panic
	// string records.
	OEM []byte
	// Message is the human text the Redfish side shows.
	Message string
	// Severity is "OK", "Warning" or "Critical" for the Redfish side.
	Severity string
}

// PanicRecord is the SEL entry Linux's ipmi_msghandler writes on a kernel
// panic: sensor type 0x20 (OS Critical Stop), sensor-specific event type
// 0x6f, offset 1 (run-time critical stop), generator 0x0041.
func PanicRecord(t time.Time) SELRecord {
	return SELRecord{
		Time:        t,
		RecordType:  0x02,
		GeneratorID: 0x0041,
		SensorType:  0x20,
		SensorNum:   0x01,
		EventType:   0x6f,
		EventData:   [3]byte{0xa1, 0x00, 0x00},
		Message:     "OS Critical Stop: run-time critical stop (kernel panic)",
		Severity:    "Critical",
	}
}

// PanicTrace is what a panicking Linux prints on its serial console.
const PanicTrace = "[ 8731.402117] Kernel panic - not syncing: Fatal exception in interrupt\r\n" +
	"[ 8731.402390] CPU: 3 PID: 0 Comm: swapper/3 Tainted: G      D           6.1.0-28-amd64 #1  Debian 6.1.119-1\r\n" +
	"[ 8731.402702] Hardware name: Simulated rmm-sim/rmm-sim, BIOS 2.19.1 06/11/2026\r\n" +
	"[ 8731.402911] Call Trace:\r\n" +
	"[ 8731.403012]  <IRQ>\r\n" +
	"[ 8731.403101]  dump_stack_lvl+0x44/0x5c\r\n" +
	"[ 8731.403233]  panic+0x118/0x2ed\r\n" +
	"[ 8731.403354]  oops_end.cold+0x9/0x45\r\n" +
	"[ 8731.403470]  exc_general_protection+0x1a4/0x410\r\n" +
	"[ 8731.403611]  asm_exc_general_protection+0x22/0x30\r\n" +
	"[ 8731.403755]  </IRQ>\r\n" +
	"[ 8731.403850] Kernel Offset: 0x1c000000 from 0xffffffff81000000\r\n" +
	"[ 8731.404011] ---[ end Kernel panic - not syncing: Fatal exception in interrupt ]---\r\n"

// BootBanner is what the machine prints on its console when it powers on.
func BootBanner(name string) string {
	return "\r\nrmm-sim BIOS 2.19.1 - press F2 for setup\r\n" +
		"Booting Linux 6.1.0-28-amd64 ...\r\n" +
		"[    0.000000] Linux version 6.1.0-28-amd64 (debian-kernel@lists.debian.org)\r\n" +
		"[    2.113301] systemd[1]: Reached target multi-user.target\r\n" +
		"\r\nDebian GNU/Linux 12 " + name + " ttyS0\r\n\r\n" + name + " login: "
}

// Machine is one simulated server. All methods are safe for concurrent use.
type Machine struct {
	Name string
	ID   Identity

	mu        sync.Mutex
	on        bool
	changes   int // power transitions, for tests
	cycleWait time.Duration
	timer     *time.Timer
	sel       []SELRecord
	nextSEL   uint16
	selClears int
	console   *Console
	actions   []string
	now       func() time.Time
	closed    bool
}

// Option configures a Machine.
type Option func(*Machine)

// WithPower sets the initial power state (default on).
func WithPower(on bool) Option { return func(m *Machine) { m.on = on } }

// WithCycleDelay sets how long a power cycle keeps the machine off (default
// 200ms; ipmi_sim uses about a second).
func WithCycleDelay(d time.Duration) Option { return func(m *Machine) { m.cycleWait = d } }

// WithClock replaces time.Now for SEL time stamps.
func WithClock(now func() time.Time) Option { return func(m *Machine) { m.now = now } }

// New returns a machine that is powered on, with an empty SEL.
func New(name string, id Identity, opts ...Option) *Machine {
	m := &Machine{Name: name, ID: id, on: true, cycleWait: 200 * time.Millisecond, nextSEL: 1, now: time.Now}
	for _, o := range opts {
		o(m)
	}
	m.console = newConsole()
	return m
}

// Close stops pending transitions and the console.
func (m *Machine) Close() {
	m.mu.Lock()
	m.closed = true
	if m.timer != nil {
		m.timer.Stop()
	}
	m.mu.Unlock()
	m.console.close()
}

// PowerOn reports whether the machine is powered on.
func (m *Machine) PowerOn() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.on
}

// Transitions returns the number of power state changes so far.
func (m *Machine) Transitions() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.changes
}

// Actions returns every power action received, in order ("on", "off",
// "cycle", "reset", "soft"), for tests that assert what a client sent.
func (m *Machine) Actions() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]string(nil), m.actions...)
}

func (m *Machine) setLocked(on bool) {
	if m.on == on {
		return
	}
	m.on = on
	m.changes++
	if on {
		m.console.Feed(BootBanner(m.Name))
	} else {
		m.console.Feed("\r\n[  OK  ] Reached target System Power Off.\r\nreboot: Power down\r\n")
	}
}

func (m *Machine) record(action string) {
	m.actions = append(m.actions, action)
	if m.timer != nil { // a new action supersedes a pending cycle
		m.timer.Stop()
		m.timer = nil
	}
}

// SetPower powers the machine on or off at once.
func (m *Machine) SetPower(on bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if on {
		m.record("on")
	} else {
		m.record("off")
	}
	m.setLocked(on)
}

// Cycle powers the machine off now and on again after the cycle delay. On
// an off machine it only powers on (after the delay), as ipmi_sim does.
func (m *Machine) Cycle() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.record("cycle")
	m.setLocked(false)
	m.timer = time.AfterFunc(m.cycleWait, func() {
		m.mu.Lock()
		defer m.mu.Unlock()
		if !m.closed {
			m.setLocked(true)
		}
	})
}

// Reset reboots a running machine without removing power: the console shows
// a fresh boot. It returns false on an off machine (nothing to reset).
func (m *Machine) Reset() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.record("reset")
	if !m.on {
		return false
	}
	m.changes++
	m.console.Feed("\r\nreboot: Restarting system\r\n" + BootBanner(m.Name))
	return true
}

// SoftOff is an ACPI shutdown request: the OS shuts down and powers off.
func (m *Machine) SoftOff() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.record("soft")
	if m.on {
		m.console.Feed("\r\n[  OK  ] Stopped target Multi-User System.\r\n")
	}
	m.setLocked(false)
}

// AddSEL appends a record, assigning its ID (and time, when zero). It
// returns the ID.
func (m *Machine) AddSEL(r SELRecord) uint16 {
	m.mu.Lock()
	defer m.mu.Unlock()
	r.ID = m.nextSEL
	m.nextSEL++
	if m.nextSEL == 0xffff || m.nextSEL == 0 {
		m.nextSEL = 1
	}
	if r.Time.IsZero() && r.RecordType < 0xe0 {
		r.Time = m.now()
	}
	m.sel = append(m.sel, r)
	return r.ID
}

// SEL returns a copy of the log, oldest first.
func (m *Machine) SEL() []SELRecord {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]SELRecord(nil), m.sel...)
}

// ClearSEL empties the log.
func (m *Machine) ClearSEL() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sel = nil
	m.selClears++
}

// SELClears counts ClearSEL calls, for tests.
func (m *Machine) SELClears() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.selClears
}

// Panic makes the machine a panicked server: powered on, an OS Critical Stop
// in the SEL, and the panic trace on its console.
func (m *Machine) Panic() {
	m.mu.Lock()
	if !m.on {
		m.setLocked(true)
	}
	m.mu.Unlock()
	m.AddSEL(PanicRecord(time.Time{}))
	m.console.Feed(PanicTrace)
}

// Console returns the machine's serial port.
func (m *Machine) Console() *Console { return m.console }

// Console is the machine's serial port. What the host prints (Feed) goes to
// every attached reader and into a bounded history; what a SOL user types
// (Type) is recorded for tests.
type Console struct {
	mu      sync.Mutex
	history []byte
	subs    map[chan []byte]struct{}
	typed   []byte
	closed  bool
}

const historyMax = 16 << 10

func newConsole() *Console { return &Console{subs: map[chan []byte]struct{}{}} }

// Feed makes the host print s on its serial port.
func (c *Console) Feed(s string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	c.history = append(c.history, s...)
	if len(c.history) > historyMax {
		c.history = append([]byte(nil), c.history[len(c.history)-historyMax:]...)
	}
	for ch := range c.subs {
		select {
		case ch <- []byte(s):
		default: // a slow reader loses output, as a real serial port does
		}
	}
}

// History returns the last 16 KiB the host printed.
func (c *Console) History() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return string(c.history)
}

// Subscribe returns a channel of console output from now on, and a function
// to stop it.
func (c *Console) Subscribe() (<-chan []byte, func()) {
	ch := make(chan []byte, 256)
	c.mu.Lock()
	if c.closed {
		close(ch)
		c.mu.Unlock()
		return ch, func() {}
	}
	c.subs[ch] = struct{}{}
	c.mu.Unlock()
	var once sync.Once
	return ch, func() {
		once.Do(func() {
			c.mu.Lock()
			if _, ok := c.subs[ch]; ok {
				delete(c.subs, ch)
				close(ch)
			}
			c.mu.Unlock()
		})
	}
}

// Type records keystrokes a SOL user sent to the host. The simulated host
// echoes them, as a login prompt does.
func (c *Console) Type(b []byte) {
	c.mu.Lock()
	c.typed = append(c.typed, b...)
	c.mu.Unlock()
	c.Feed(strings.ReplaceAll(string(b), "\r", "\r\n"))
}

// Typed returns every keystroke received so far.
func (c *Console) Typed() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return string(c.typed)
}

func (c *Console) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	c.closed = true
	for ch := range c.subs {
		delete(c.subs, ch)
		close(ch)
	}
}
