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
//
// The GUID is a well-formed RFC 4122 version 4 UUID. That matters for
// ipmitool: "mc guid" guesses the wire encoding from the version field, and
// only a GUID whose version nibble is valid in exactly the IPMI byte order
// is printed back as the same string (see ipmisim's Get System GUID).
func DerivedIdentity(name string) Identity {
	sum := md5.Sum([]byte("rmm-sim:" + name))
	sum[6] = sum[6]&0x0f | 0x40 // version 4
	sum[8] = sum[8]&0x3f | 0x80 // RFC 4122 variant
	if sum[9]>>4 == 1 {
		// ipmitool's auto-detection prefers any decoding that reads as a
		// version 1 UUID with a plausible time stamp; in the RFC 4122
		// decoding of IPMI-ordered bytes this nibble is the version.
		sum[9] ^= 0x80
	}
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
	// OEM holds the OEM bytes of a non-system record as they appear on
	// the wire after the record type: for 0xC0-0xDF (timestamped OEM) the
	// 9 bytes after the time stamp (manufacturer ID, 6 OEM bytes); for
	// 0xE0-0xFF (non-timestamped OEM) all 13 bytes, e.g. Linux's panic
	// string records (BMC address, sequence, 11 characters).
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

// PanicMessage is the panic string of PanicTrace, which Linux also writes
// into the SEL (see PanicRecords).
const PanicMessage = "Fatal exception in interrupt"

// PanicRecords is everything Linux's ipmi_msghandler logs on a panic with
// panic_op=string: the OS Critical Stop event (PanicRecord, with the first
// two characters of msg as OEM "breadcrumbs" in event data 2 and 3), then
// one non-timestamped OEM record (type 0xF0) per 11 characters of msg:
// BMC address 0x20, a sequence number, the characters NUL-padded. ipmitool
// prints those as "Linux kernel panic: <text>". This is the same sequence
// the ipmi_sim recipe's add-panic-sel.sh writes.
func PanicRecords(t time.Time, msg string) []SELRecord {
	ev := PanicRecord(t)
	if len(msg) > 0 {
		ev.EventData[1] = msg[0]
	}
	if len(msg) > 1 {
		ev.EventData[2] = msg[1]
	}
	out := []SELRecord{ev}
	for seq := 0; len(msg) > 0 && seq < 256; seq++ {
		chunk := msg[:min(11, len(msg))]
		msg = msg[len(chunk):]
		oem := make([]byte, 13)
		oem[0] = 0x20
		oem[1] = byte(seq)
		copy(oem[2:], chunk)
		out = append(out, SELRecord{
			RecordType: 0xf0,
			OEM:        oem,
			Message:    "Linux kernel panic: " + chunk,
			Severity:   "Critical",
		})
	}
	return out
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
	selOffset time.Duration // Set SEL Time moves the SEL clock, not the machine's
	selAdded  time.Time
	selErased time.Time
	selFull   bool
	sensors   []Sensor
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
	m := &Machine{Name: name, ID: id, on: true, cycleWait: 200 * time.Millisecond, nextSEL: 1, now: time.Now,
		sensors: DefaultSensors()}
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

// SELCapacity is how many records the SEL holds. Like a real BMC's, a
// full SEL logs nothing more (AddSEL returns 0) and reports overflow until
// it is cleared.
const SELCapacity = 1024

// AddSEL appends a record, assigning its ID and, for record types below
// 0xE0 without one, the SEL clock's time. A record without a Message gets
// a generic description. It returns the ID, or 0 when the SEL is full.
func (m *Machine) AddSEL(r SELRecord) uint16 {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.sel) >= SELCapacity {
		m.selFull = true
		return 0
	}
	r.ID = m.nextSEL
	m.nextSEL++
	if m.nextSEL == 0xffff || m.nextSEL == 0 {
		m.nextSEL = 1
	}
	if r.Time.IsZero() && r.RecordType < 0xe0 {
		r.Time = m.selNowLocked()
	}
	if r.Message == "" {
		r.Message, r.Severity = Describe(r)
	}
	if r.Severity == "" {
		r.Severity = "OK"
	}
	r.OEM = append([]byte(nil), r.OEM...)
	m.sel = append(m.sel, r)
	m.selAdded = m.selNowLocked()
	return r.ID
}

// SEL returns a copy of the log, oldest first.
func (m *Machine) SEL() []SELRecord {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]SELRecord(nil), m.sel...)
}

// DeleteSEL removes the record with the given ID and reports whether it
// existed.
func (m *Machine) DeleteSEL(id uint16) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i, r := range m.sel {
		if r.ID == id {
			m.sel = append(m.sel[:i:i], m.sel[i+1:]...)
			m.selErased = m.selNowLocked()
			return true
		}
	}
	return false
}

// ClearSEL empties the log.
func (m *Machine) ClearSEL() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sel = nil
	m.selClears++
	m.selFull = false
	m.selErased = m.selNowLocked()
}

// SELStatus is what Get SEL Info reports besides the records.
type SELStatus struct {
	Entries int
	// LastAdd and LastErase are SEL clock times; zero when it never
	// happened.
	LastAdd, LastErase time.Time
	// Overflow is set when an event was lost because the SEL was full.
	Overflow bool
}

// SELStatus returns the log's bookkeeping.
func (m *Machine) SELStatus() SELStatus {
	m.mu.Lock()
	defer m.mu.Unlock()
	return SELStatus{Entries: len(m.sel), LastAdd: m.selAdded, LastErase: m.selErased, Overflow: m.selFull}
}

// SELTime is the SEL clock: the machine's clock moved by SetSELTime, as a
// BMC keeps its own time apart from the host's.
func (m *Machine) SELTime() time.Time {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.selNowLocked()
}

// SetSELTime sets the SEL clock (IPMI Set SEL Time); time stamps of later
// records follow it.
func (m *Machine) SetSELTime(t time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.selOffset = t.Sub(m.now())
}

func (m *Machine) selNowLocked() time.Time { return m.now().Add(m.selOffset) }

// SELClears counts ClearSEL calls, for tests.
func (m *Machine) SELClears() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.selClears
}

// Panic makes the machine a panicked server: powered on, an OS Critical Stop
// in the SEL followed by Linux's panic-string OEM records (PanicRecords with
// PanicMessage), and the panic trace on its console.
func (m *Machine) Panic() {
	m.mu.Lock()
	if !m.on {
		m.setLocked(true)
	}
	m.mu.Unlock()
	for _, r := range PanicRecords(time.Time{}, PanicMessage) {
		m.AddSEL(r)
	}
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
