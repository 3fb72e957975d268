// Package bmc talks to baseboard management controllers over IPMI and
// Redfish, always by IP address.
//
// It is rmm's own small interface in front of the protocol code: commands
// see Target, Conn, PowerState, Identity, SELEntry and friends, never a
// bmclib, gofish or go-ipmi type. bmclib is the engine underneath: each
// host's providers are registered in a bmclib (registrar) registry in the
// host's protocol order and driven through bmclib's provider functions
// (open, power state, power set, close), with rmm choosing the order and
// sharing out the deadline. rmm's providers are its own native IPMI
// provider (an RMCP+ session layer with crypto/rand IVs, see bmc/ipmi) and
// its own Redfish provider on gofish (bmc/redfish), with bmclib's ipmitool
// provider as a last resort.
//
// The package knows nothing about YAML, inventories or cobra: callers build
// a Target from whatever they hold.
package bmc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"time"

	"github.com/rmm-project/rmm/secret"
)

// Protocol names a way of talking to a BMC.
type Protocol string

// Protocols rmm speaks. ProtocolIPMItool is bmclib's provider that runs the
// ipmitool binary; it is only ever a fallback after ProtocolIPMI.
const (
	ProtocolIPMI     Protocol = "ipmi"
	ProtocolRedfish  Protocol = "redfish"
	ProtocolIPMItool Protocol = "ipmitool"
)

// Default ports.
const (
	DefaultIPMIPort    = 623
	DefaultRedfishPort = 443
)

// Target is everything needed to reach one BMC. It is built by the caller
// (rmm's commands build it from the inventory) and never resolved: Addr is an
// IP address, and nothing in this package asks DNS.
type Target struct {
	// Name is the host's name, used in every error and log line.
	Name string
	// Addr is the BMC's IP address (v4 or v6).
	Addr netip.Addr
	// IPMIPort and RedfishPort default to 623 and 443 when zero.
	IPMIPort    uint16
	RedfishPort uint16
	// Protocols is the order to try; empty means IPMI, then Redfish.
	Protocols []Protocol

	// Username and Password are the BMC credentials.
	Username string
	Password secret.Value

	// CipherSuite is the RMCP+ cipher suite (3 or 17); 0 tries 17, then 3.
	CipherSuite int

	// TLS settings for Redfish.
	TLS TLSConfig

	// Expect is the identity the inventory records for this host. Zero fields
	// are not checked.
	Expect Identity
}

// TLSConfig says how to trust a Redfish BMC's certificate. BMC certificates
// are almost always self-signed, so rmm pins them instead of using a CA.
type TLSConfig struct {
	// Fingerprint is the expected SHA-256 fingerprint of the leaf
	// certificate, as lowercase hex without separators. When empty, Trust is
	// consulted (trust on first use).
	Fingerprint string
	// Trust records fingerprints seen on first use, like ssh's known_hosts.
	// May be nil: then an unpinned certificate is refused unless Insecure.
	Trust TrustStore
	// Insecure accepts any certificate. It is loud: callers must say so on
	// stderr every time it is used.
	Insecure bool
}

// TrustStore remembers BMC certificate fingerprints between runs.
type TrustStore interface {
	// Lookup returns the recorded fingerprint for a BMC endpoint.
	Lookup(name string, ap netip.AddrPort) (fingerprint string, ok bool)
	// Remember records a fingerprint seen for the first time.
	Remember(name string, ap netip.AddrPort, fingerprint string) error
}

// IPMIAddr is the BMC's IPMI endpoint.
func (t Target) IPMIAddr() netip.AddrPort {
	p := t.IPMIPort
	if p == 0 {
		p = DefaultIPMIPort
	}
	return netip.AddrPortFrom(t.Addr, p)
}

// RedfishAddr is the BMC's Redfish (HTTPS) endpoint.
func (t Target) RedfishAddr() netip.AddrPort {
	p := t.RedfishPort
	if p == 0 {
		p = DefaultRedfishPort
	}
	return netip.AddrPortFrom(t.Addr, p)
}

// ProtocolOrder returns the protocols to try, in order.
func (t Target) ProtocolOrder() []Protocol {
	if len(t.Protocols) == 0 {
		return []Protocol{ProtocolIPMI, ProtocolRedfish}
	}
	return t.Protocols
}

// PowerState is the chassis power as the BMC reports it.
type PowerState string

// Power states. Redfish's transitional states are kept so that a poll can
// tell "going off" from "off".
const (
	PowerOn         PowerState = "on"
	PowerOff        PowerState = "off"
	PowerPoweringOn PowerState = "powering-on"
	PowerPoweringOf PowerState = "powering-off"
	PowerUnknown    PowerState = "unknown"
)

// PowerAction is a request to change chassis power. The semantics follow
// ipmitool's "chassis power" verbs on every protocol:
//
//   - on: power up; success when already on.
//   - off: hard power down, no OS shutdown; success when already off.
//   - cycle: hard power down, then up. On an off host it powers on. Redfish
//     BMCs without PowerCycle get ForceRestart (when on) or ForceOff then On.
//   - reset: hard reset (warm boot) without removing power. Fails on an
//     off host, with a hint to use on.
//   - soft: ask the OS to shut down (ACPI); success when already off.
type PowerAction string

// Power actions.
const (
	ActionOn    PowerAction = "on"
	ActionOff   PowerAction = "off"
	ActionCycle PowerAction = "cycle"
	ActionReset PowerAction = "reset"
	ActionSoft  PowerAction = "soft"
)

// Destructive reports whether the action can take a running host down and
// therefore needs confirmation.
func (a PowerAction) Destructive() bool {
	switch a {
	case ActionOff, ActionCycle, ActionReset, ActionSoft:
		return true
	}
	return false
}

// Expected is the power state the action leads to, for --wait.
func (a PowerAction) Expected() PowerState {
	switch a {
	case ActionOff, ActionSoft:
		return PowerOff
	default:
		return PowerOn
	}
}

// Identity is what a BMC says about the machine it manages. Strings are
// normalised: UUID lowercase 8-4-4-4-12, GUID as described below, others
// trimmed.
type Identity struct {
	// GUID is the IPMI System GUID (Get System GUID) as ipmitool prints it:
	// dashed lowercase when a UUID version is recognised, else 32
	// uppercase hex digits.
	GUID string `json:"guid,omitempty"`
	// UUID is the SMBIOS system UUID (Redfish ComputerSystem.UUID).
	UUID string `json:"uuid,omitempty"`
	// Serial is the system serial number.
	Serial string `json:"serial,omitempty"`
	// Vendor, Model and Firmware describe the BMC and machine.
	Vendor   string `json:"vendor,omitempty"`
	Model    string `json:"model,omitempty"`
	Firmware string `json:"firmware,omitempty"`
}

// IsZero reports whether no identity field is set.
func (id Identity) IsZero() bool {
	return id.GUID == "" && id.UUID == "" && id.Serial == ""
}

// Mismatch compares the expected identity (the inventory's) with the one
// read from the BMC. It returns nil when every field the inventory records
// and the BMC reports agrees and at least one was compared; an
// ErrIdentityMismatch error naming the differing field otherwise. When
// nothing could be compared it returns an error too: a destructive action
// must not go ahead on an unverified machine.
func (id Identity) Mismatch(got Identity) error {
	if id.IsZero() {
		return nil
	}
	compared := 0
	check := func(field, want, have string) error {
		if want == "" || have == "" {
			return nil
		}
		compared++
		if !strings.EqualFold(strings.TrimSpace(want), strings.TrimSpace(have)) {
			return fmt.Errorf("%w: %s is %s, inventory expects %s", ErrIdentityMismatch, field, have, want)
		}
		return nil
	}
	if err := check("guid", id.GUID, got.GUID); err != nil {
		return err
	}
	if err := check("uuid", id.UUID, got.UUID); err != nil {
		return err
	}
	if err := check("serial", id.Serial, got.Serial); err != nil {
		return err
	}
	if compared == 0 {
		return fmt.Errorf("%w: the BMC reports none of the identity fields the inventory records", ErrIdentityMismatch)
	}
	return nil
}

// Severity of a SEL entry or a health finding.
type Severity string

// Severities, in increasing order.
const (
	SeverityInfo     Severity = "info"
	SeverityWarning  Severity = "warning"
	SeverityCritical Severity = "critical"
)

// Rank orders severities: info 0, warning 1, critical 2, unknown -1.
func (s Severity) Rank() int {
	switch s {
	case SeverityInfo:
		return 0
	case SeverityWarning:
		return 1
	case SeverityCritical:
		return 2
	}
	return -1
}

// SELEntry is one decoded System Event Log record, from IPMI or a Redfish
// log service.
type SELEntry struct {
	// ID is the record ID (IPMI) or the LogEntry Id (Redfish).
	ID string `json:"id"`
	// Time is when the event was logged; zero when the BMC does not know
	// (IPMI "Pre-Init" time stamps).
	Time time.Time `json:"time"`
	// SensorType is the decoded sensor type ("OS Critical Stop").
	SensorType string `json:"sensor_type,omitempty"`
	// SensorTypeCode is the IPMI sensor type (0x20 for OS Critical Stop).
	SensorTypeCode uint8 `json:"sensor_type_code,omitempty"`
	// SensorNumber is the IPMI sensor number.
	SensorNumber uint8 `json:"sensor_number,omitempty"`
	// Sensor is the sensor's name when known ("OS Stop").
	Sensor string `json:"sensor,omitempty"`
	// Event is the decoded event ("Run-time critical stop").
	Event string `json:"event,omitempty"`
	// Direction is "asserted" or "deasserted".
	Direction string `json:"direction,omitempty"`
	// Severity is rmm's reading of how bad the event is.
	Severity Severity `json:"severity"`
	// Message is the BMC's own text (Redfish Message, IPMI OEM text).
	Message string `json:"message,omitempty"`
	// Raw is the record as hex (IPMI: the 16 record bytes).
	Raw string `json:"raw,omitempty"`
	// Source says where the entry came from: "ipmi" or a Redfish log
	// service path.
	Source string `json:"source,omitempty"`
}

// IsKernelPanic reports whether the entry is the OS Critical Stop event
// Linux logs when it panics (sensor type 0x20, run-time critical stop).
func (e SELEntry) IsKernelPanic() bool {
	return e.SensorTypeCode == 0x20 || strings.EqualFold(e.SensorType, "OS Critical Stop")
}

// Health is what a BMC reports about the hardware's condition.
type Health struct {
	// Rollups are summary states the BMC computes (Redfish System and
	// Chassis Status.HealthRollup). A rollup can be critical while every
	// sensor reads OK, so they are reported separately.
	Rollups []HealthItem `json:"rollups,omitempty"`
	// Sensors are individual readings (temperatures, fans, PSUs, voltages).
	Sensors []HealthItem `json:"sensors,omitempty"`
}

// HealthItem is one rollup or sensor.
type HealthItem struct {
	Name     string   `json:"name"`
	Kind     string   `json:"kind,omitempty"` // temperature, fan, power, voltage, rollup, ...
	Reading  *float64 `json:"reading,omitempty"`
	Unit     string   `json:"unit,omitempty"`
	Severity Severity `json:"severity"`
	// Detail explains a non-info severity ("above upper critical 95 C",
	// "Oem.Hpe.AggregateHealthStatus.Storage: Critical").
	Detail string `json:"detail,omitempty"`
}

// Worst returns the highest severity among all items, SeverityInfo if none.
func (h Health) Worst() Severity {
	worst := SeverityInfo
	for _, it := range append(append([]HealthItem(nil), h.Rollups...), h.Sensors...) {
		if it.Severity.Rank() > worst.Rank() {
			worst = it.Severity
		}
	}
	return worst
}

// ConsoleInfo lists the console transports a BMC advertises.
type ConsoleInfo struct {
	Transports []ConsoleTransport `json:"transports"`
}

// ConsoleTransport is one way to reach the host's console.
type ConsoleTransport struct {
	// Kind is "ipmi-sol", "ssh" or "telnet".
	Kind    string `json:"kind"`
	Enabled bool   `json:"enabled"`
	Port    int    `json:"port,omitempty"`
	// EntryCommand is what to type after connecting (Supermicro's
	// "cd system1/sol1; start").
	EntryCommand string `json:"entry_command,omitempty"`
	// Where is the Redfish resource that advertised it.
	Where string `json:"where,omitempty"`
}

// ConsoleOptions tune a serial console session.
type ConsoleOptions struct {
	// Force deactivates a SOL payload held by another session first.
	Force bool
}

// Console is a live Serial-over-LAN session. Read returns what the host's
// serial port prints; Write sends keystrokes. Close deactivates the payload
// and closes the session; it must be called on every path.
type Console interface {
	io.ReadWriter
	// SendBreak sends a serial break (magic SysRq on Linux).
	SendBreak(ctx context.Context) error
	// Close ends the console and its session.
	Close(ctx context.Context) error
}

// Errors a caller can test with errors.Is. Every error the package returns
// wraps one of these (or is a context error) so commands can report a typed
// outcome per host.
var (
	ErrUnreachable      = errors.New("bmc unreachable")
	ErrTimeout          = errors.New("timed out")
	ErrAuth             = errors.New("authentication failed")
	ErrUnsupported      = errors.New("not supported by this BMC")
	ErrBusy             = errors.New("busy")
	ErrIdentityMismatch = errors.New("identity mismatch")
	ErrProtocol         = errors.New("protocol error")
	ErrHostname         = errors.New("refusing a host name where an IP address belongs (rmm never uses DNS)")
	ErrTLSPin           = errors.New("certificate does not match the pinned fingerprint")
	// ErrNotSent marks a failed state change that never reached the BMC
	// (the power read or privilege change before it failed, or the action
	// was refused locally). The audit journal records only requests that
	// may have been acted on.
	ErrNotSent = errors.New("nothing was sent to the BMC")
)

// NotSent marks err as having failed before the state-changing request was
// sent. The text is unchanged: the marker is for errors.Is only.
func NotSent(err error) error {
	if err == nil || errors.Is(err, ErrNotSent) {
		return err
	}
	return &notSent{err}
}

type notSent struct{ err error }

func (n *notSent) Error() string   { return n.err.Error() }
func (n *notSent) Unwrap() []error { return []error{n.err, ErrNotSent} }

// Outcome is the typed result of one host's operation, as shown in tables
// and JSON.
type Outcome string

// Outcomes.
const (
	OutcomeOK               Outcome = "ok"
	OutcomeUnreachable      Outcome = "unreachable"
	OutcomeTimeout          Outcome = "timeout"
	OutcomeAuthFailed       Outcome = "auth failed"
	OutcomeUnsupported      Outcome = "unsupported"
	OutcomeBusy             Outcome = "busy"
	OutcomeIdentityMismatch Outcome = "identity mismatch"
	OutcomeRefused          Outcome = "refused"
	OutcomeCancelled        Outcome = "cancelled"
	OutcomeFailed           Outcome = "failed"
)

// Classify maps an error to an Outcome.
func Classify(err error) Outcome {
	switch {
	case err == nil:
		return OutcomeOK
	case errors.Is(err, ErrIdentityMismatch):
		return OutcomeIdentityMismatch
	case errors.Is(err, ErrAuth), errors.Is(err, ErrTLSPin):
		return OutcomeAuthFailed
	case errors.Is(err, ErrBusy):
		return OutcomeBusy
	case errors.Is(err, ErrUnsupported):
		return OutcomeUnsupported
	case errors.Is(err, context.Canceled):
		return OutcomeCancelled
	case errors.Is(err, ErrTimeout), errors.Is(err, context.DeadlineExceeded):
		return OutcomeTimeout
	case errors.Is(err, ErrUnreachable):
		return OutcomeUnreachable
	}
	return OutcomeFailed
}

// HostError says which host and BMC an error is about:
//
//	db1 (bmc 10.0.5.11): power status: authentication failed
//	hint: check the credentials set "prod" ...
type HostError struct {
	Host string
	Addr netip.Addr
	Op   string
	Err  error
	// Hint is a known fix, printed on its own line by the CLI.
	Hint string
}

func (e *HostError) Error() string {
	var b strings.Builder
	b.WriteString(e.Host)
	if e.Addr.IsValid() {
		fmt.Fprintf(&b, " (bmc %s)", e.Addr)
	}
	if e.Op != "" {
		b.WriteString(": ")
		b.WriteString(e.Op)
	}
	b.WriteString(": ")
	b.WriteString(e.Err.Error())
	return b.String()
}

func (e *HostError) Unwrap() error { return e.Err }

// Wrap attaches host and operation to err. It returns nil for nil and does
// not wrap twice.
func (t Target) Wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	var he *HostError
	if errors.As(err, &he) {
		return err
	}
	return &HostError{Host: t.Name, Addr: t.Addr, Op: op, Err: err, Hint: hintFor(err)}
}

// Hint returns the hint attached to err, if any.
func Hint(err error) string {
	var he *HostError
	if errors.As(err, &he) {
		return he.Hint
	}
	return ""
}

// hintFor suggests a fix for the common failures.
func hintFor(err error) string {
	var h interface{ Hint() string }
	if errors.As(err, &h) && h.Hint() != "" {
		return h.Hint()
	}
	switch Classify(err) {
	case OutcomeAuthFailed:
		if errors.Is(err, ErrTLSPin) {
			return "the BMC's certificate changed; if that is expected, review it with 'rmm known-bmcs' and update the pin"
		}
		return "check the user and password of the host's credentials set in the inventory"
	case OutcomeTimeout, OutcomeUnreachable:
		return "the BMC did not answer: check its IP in the inventory, the management network and that IPMI/Redfish is enabled"
	case OutcomeBusy:
		return "another session holds the resource; retry, or use --force where the command offers it"
	}
	return ""
}
