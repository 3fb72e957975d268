package bmc

import (
	"context"
	"strings"
)

// Provider is one protocol implementation for one Target. Its method set is
// bmclib's connection and power interfaces (Opener, Closer,
// PowerStateGetter, PowerSetter), so a Provider registers directly in
// bmclib's registry; the optional capabilities below are found by type
// assertion, like bmclib's own small interfaces.
//
// A Provider is used by one goroutine at a time: the engine serialises calls
// on it. Open must not leave anything behind when it fails, and Close must
// release the session even when ctx is already cancelled (it uses its own
// short deadline then).
type Provider interface {
	// Name is the provider's registry name ("rmm-ipmi", "rmm-redfish").
	Name() string
	// Open establishes an authenticated session.
	Open(ctx context.Context) error
	// Close ends the session. Safe to call more than once.
	Close(ctx context.Context) error
	// PowerStateGet returns "on", "off", or a transitional state that
	// ParsePowerState understands.
	PowerStateGet(ctx context.Context) (string, error)
	// PowerSet performs a PowerAction given as a string (bmclib's
	// contract); ok is true when the BMC accepted it.
	PowerSet(ctx context.Context, action string) (ok bool, err error)
}

// ProviderFunc builds a provider for a target. rmm's main package supplies
// one per protocol, so this package does not import its providers.
type ProviderFunc func(t Target) (Provider, error)

// IdentityReader reads the managed machine's identity.
type IdentityReader interface {
	Identity(ctx context.Context) (Identity, error)
}

// SELReader reads the System Event Log, oldest first.
type SELReader interface {
	SEL(ctx context.Context) ([]SELEntry, error)
}

// SELClearer clears the System Event Log.
type SELClearer interface {
	ClearSEL(ctx context.Context) error
}

// HealthReader reads rollups and sensors.
type HealthReader interface {
	Health(ctx context.Context) (Health, error)
}

// ConsoleInfoReader lists the console transports the BMC advertises.
type ConsoleInfoReader interface {
	ConsoleInfo(ctx context.Context) (ConsoleInfo, error)
}

// ConsoleOpener opens a Serial-over-LAN console on the open session.
type ConsoleOpener interface {
	Console(ctx context.Context, opts ConsoleOptions) (Console, error)
}

// ParsePowerState understands the spellings providers return: rmm's own
// ("on"), Redfish's ("On", "PoweringOff") and ipmitool's ("Chassis Power is
// on").
func ParsePowerState(s string) PowerState {
	s = strings.ToLower(strings.TrimSpace(s))
	s = strings.TrimPrefix(s, "chassis power is ")
	switch s {
	case "on":
		return PowerOn
	case "off":
		return PowerOff
	case "poweringon", "powering-on", "powering on":
		return PowerPoweringOn
	case "poweringoff", "powering-off", "powering off":
		return PowerPoweringOf
	}
	return PowerUnknown
}
