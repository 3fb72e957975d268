// Package inventory reads rmm's static inventory: the hosts, the fixed IP
// address of each host's BMC, how to talk to it and which credentials to use.
//
// The inventory exists so that rmm needs nothing else on the night everything
// else is down: no DNS (every BMC address is an IP literal, parsed with
// net/netip and never resolved), no database, no server. It is a YAML file
// that people edit by hand and keep in git, so the loader is strict and
// helpful: every problem is reported at once, each with file:line, and
// nothing on any input makes it panic.
//
// The package knows hosts and nothing about protocols: no bmc, no cobra. It
// resolves credentials (environment, file, command) because where a password
// comes from is part of the inventory's design.
package inventory

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/rmm-project/rmm/secret"
)

// Default BMC ports, used when neither defaults, groups nor the host set one.
const (
	DefaultIPMIPort    = 623
	DefaultRedfishPort = 443
)

// Protocol names accepted in protocols lists. They are the same strings as
// bmc.Protocol values, so callers convert with bmc.Protocol(s).
const (
	ProtocolIPMI     = "ipmi"
	ProtocolRedfish  = "redfish"
	ProtocolIPMItool = "ipmitool"
)

// EnvInventory is the environment variable that names the inventory file
// when -i/--inventory is not given.
const EnvInventory = "RMM_INVENTORY"

// SearchPath lists where FindPath looks after the flag and $RMM_INVENTORY.
var SearchPath = []string{"inventory.yaml", "/etc/rmm/inventory.yaml"}

// Inventory is a loaded, valid inventory. It is read-only after Load and safe
// to share between goroutines.
type Inventory struct {
	// Path is the file it was read from, as given (used in every message).
	Path string
	// Hosts are in file order, ranges expanded. Selections keep this order.
	Hosts []*Host
	// Groups and Credentials are keyed by name.
	Groups      map[string]*Group
	Credentials map[string]*CredentialSet

	byName map[string]*Host
	// insecureAt records where "insecure: true" is written, for Lint.
	insecureAt []Pos
	// complete is false when parsing found errors: Lint then skips the
	// checks that would be misled by the hosts that were left out.
	complete bool
}

// Host is one managed machine, with every setting resolved (defaults, then
// its groups in order, then its own entry).
type Host struct {
	// Name is unique in the inventory: [a-z0-9][a-z0-9._-]*.
	Name string
	// Addr is the BMC's IP address. It is never a name: rmm never uses DNS.
	Addr netip.Addr
	// IPMIPort and RedfishPort are resolved ports (default 623 and 443).
	IPMIPort, RedfishPort uint16
	// Protocols is the order to try: "ipmi", "redfish", "ipmitool".
	Protocols []string
	// Credentials names the credential set in Inventory.Credentials.
	Credentials string
	// Groups are the groups the host entry lists, in its order.
	Groups []string
	// Labels are free key=value pairs (site, rack, role...), merged from
	// defaults, groups and the host entry.
	Labels map[string]string
	// CipherSuite is the RMCP+ cipher suite (1, 2, 3 or 17); 0 lets the
	// IPMI client choose.
	CipherSuite int
	// TLS says how to trust the Redfish certificate.
	TLS TLS
	// Expect is what the host should look like; identity is checked before
	// destructive actions.
	Expect Expect
	// Sim is read only by rmm sim, the simulator.
	Sim Sim
	// Pos is where the host's entry starts (a range entry's hosts share it).
	Pos Pos

	// entry is the entry's name as written ("web[01-20]" for a range).
	entry string
	index int
}

// TLS is the Redfish certificate policy for one host.
type TLS struct {
	// Fingerprint is the pinned SHA-256 of the leaf certificate, lowercase
	// hex without separators; empty means trust on first use.
	Fingerprint string
	// Insecure accepts any certificate. Lint warns wherever it is set.
	Insecure bool
}

// Expect is what the inventory says about a host, for checks before acting.
type Expect struct {
	// GUID (IPMI system GUID) and UUID (SMBIOS UUID) are lowercase
	// 8-4-4-4-12; Serial is the system serial number. Empty is not checked.
	GUID, UUID, Serial string
	// Power is the expected power state, "on" or "off", or empty.
	Power string
}

// Sim configures how rmm sim simulates the host's BMC.
type Sim struct {
	// Vendor picks the Redfish mockup: dell, hpe, lenovo, supermicro, dmtf.
	Vendor string
	// Scenarios are failure modes: dead, slow, wrong-credentials, panicked,
	// sol-busy, overheat, replaced.
	Scenarios []string
	// Delay is how long a slow BMC takes to answer.
	Delay time.Duration
}

// Group is a named set of hosts that can also carry shared settings.
type Group struct {
	Name        string
	Description string
	Pos         Pos
}

// Pos is a place in the inventory file.
type Pos struct {
	File string
	Line int
}

// String is "file:line", or just the file when the line is unknown.
func (p Pos) String() string {
	if p.Line <= 0 {
		return p.File
	}
	return fmt.Sprintf("%s:%d", p.File, p.Line)
}

// Problem is one error or warning found in an inventory.
type Problem struct {
	File    string
	Line    int
	Warning bool
	Msg     string
}

// String formats the problem the way compilers do, so editors can jump to
// it: "inventory.yaml:14: msg", or "inventory.yaml:14: warning: msg".
func (p Problem) String() string {
	var b strings.Builder
	b.WriteString(Pos{File: p.File, Line: p.Line}.String())
	b.WriteString(": ")
	if p.Warning {
		b.WriteString("warning: ")
	}
	b.WriteString(p.Msg)
	return b.String()
}

// LoadError is returned by Load for an invalid inventory. Problems holds
// every error and warning, sorted by line.
type LoadError struct {
	Problems []Problem
}

// Errors returns the problems that are errors (not warnings).
func (e *LoadError) Errors() []Problem {
	var out []Problem
	for _, p := range e.Problems {
		if !p.Warning {
			out = append(out, p)
		}
	}
	return out
}

// Error lists every error, one "file:line: message" per line.
func (e *LoadError) Error() string {
	errs := e.Errors()
	lines := make([]string, len(errs))
	for i, p := range errs {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// HasErrors reports whether any problem is an error.
func HasErrors(probs []Problem) bool {
	for _, p := range probs {
		if !p.Warning {
			return true
		}
	}
	return false
}

// ErrNotFound is returned by FindPath when no inventory is named and none
// exists in the usual places.
var ErrNotFound = errors.New("no inventory found: give -i FILE, set $" + EnvInventory +
	", or create ./inventory.yaml or /etc/rmm/inventory.yaml")

// FindPath decides which inventory file to read: the flag, else
// $RMM_INVENTORY, else the first of SearchPath that exists. A named file is
// returned even if it does not exist, so that Load reports it precisely
// instead of silently falling back to another fleet.
func FindPath(flag string, getenv func(string) string, exists func(string) bool) (string, error) {
	if flag != "" {
		return flag, nil
	}
	if v := getenv(EnvInventory); v != "" {
		return v, nil
	}
	for _, p := range SearchPath {
		if exists(p) {
			return p, nil
		}
	}
	return "", ErrNotFound
}

// Load reads and validates the inventory at path. An invalid inventory gives
// a *LoadError listing every problem; an unreadable one gives the read error.
func Load(path string) (*Inventory, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read inventory: %w", err)
	}
	inv, probs := Parse(path, data)
	if HasErrors(probs) {
		return nil, &LoadError{Problems: probs}
	}
	return inv, nil
}

// Parse validates data as an inventory read from file (the name is used in
// problems and to resolve relative password_file paths). It returns every
// problem sorted by line; inv is nil when any problem is an error.
func Parse(file string, data []byte) (*Inventory, []Problem) {
	inv, probs := parse(file, data)
	if HasErrors(probs) {
		return nil, probs
	}
	return inv, probs
}

// Check returns everything `rmm inventory check` reports for data: the
// parse problems and Lint's warnings, sorted by line. When there are errors,
// the warnings that depend on the whole host list are left out, since the
// hosts with errors are missing from it.
func Check(file string, data []byte) []Problem {
	inv, probs := parse(file, data)
	if inv != nil {
		probs = append(probs, inv.Lint()...)
		sortProblems(probs)
	}
	return probs
}

// Host returns the host with the given name.
func (inv *Inventory) Host(name string) (*Host, bool) {
	h, ok := inv.byName[name]
	return h, ok
}

// SetResolveHooks sets Getenv and OnResolve on every credential set: the
// CLI passes its (test-replaceable) environment and its output scrubbers.
// Call it before any Resolve.
func (inv *Inventory) SetResolveHooks(getenv func(string) string, onResolve func(secret.Value)) {
	for _, c := range inv.Credentials {
		c.Getenv, c.OnResolve = getenv, onResolve
	}
}

// CredentialsFor returns the host's credential set. It is never nil for a
// host of a valid inventory.
func (inv *Inventory) CredentialsFor(h *Host) *CredentialSet {
	return inv.Credentials[h.Credentials]
}
