// Package ipmisim is a simulated IPMI BMC: go-ipmi v0.9.1's reference BMC
// (pkg/server, pkg/bmc) over a HAL of its own that drives a
// *machine.Machine, with what the reference BMC lacks added on top:
//
//   - chassis power cycle, reset and soft-off that really change the
//     machine's state (go-ipmi's mock HAL only counts them);
//   - a System Event Log (Get SEL Info/Allocation Info, Reserve, Get/Add/
//     Delete Entry, Clear, Get/Set SEL Time), including the entries Linux
//     writes on a kernel panic;
//   - an SDR repository and threshold sensors answering Get Sensor Reading,
//     so ipmitool sdr/sensor and FreeIPMI name sensors and read health;
//   - Get System GUID carrying the machine's identity;
//   - SOL fed by the machine's console;
//   - session bookkeeping that tells established from half-open sessions,
//     a session table of realistic size, Get Session Info for any session,
//     and a phantom session holding SOL (the sol-busy scenario);
//   - network faults injected at the packet level, switchable at run time.
//
// It is built for tests and for `rmm sim`: one BMC is two goroutines and a
// UDP socket, so a thousand run in one process. Every address is an IP
// (netip); nothing here resolves names.
package ipmisim

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	gobmc "github.com/bougou/go-ipmi/pkg/bmc"
	"github.com/bougou/go-ipmi/pkg/clock"
	"github.com/bougou/go-ipmi/pkg/server"
	"github.com/bougou/go-ipmi/pkg/types"

	"github.com/rmm-project/rmm/sim/machine"
)

// Defaults for Config fields left zero.
const (
	// DefaultMaxSessions is the session table size. go-ipmi's BMC fixes it
	// at 4 (the spec minimum); real BMCs have 16 to 64 and ipmi_sim 63.
	DefaultMaxSessions = 32
	// DefaultSessionTimeout is the inactivity timeout after which the BMC
	// drops a session (IPMI's default, go-ipmi's too).
	DefaultSessionTimeout = gobmc.DefaultInactivityTimeout
	// DefaultBufferSize is the UDP read buffer. IPMI packets are at most a
	// few hundred bytes (a full SOL packet is under 300); go-ipmi's 4 KiB
	// default costs 4 MB across a thousand BMCs for nothing.
	DefaultBufferSize = 1024
)

// Config describes one simulated BMC.
type Config struct {
	// Addr is the UDP address to serve on (IP literal and port).
	Addr netip.AddrPort
	// Machine is the server the BMC manages; required. The BMC never
	// closes it: the caller owns it (the Redfish side may share it).
	Machine *machine.Machine
	// Username and Password are the one administrator account the BMC
	// accepts (user ID 2, like most BMCs' factory account).
	Username, Password string
	// Vendor picks Get Device ID's manufacturer and firmware: "dell",
	// "hpe", "lenovo", "supermicro"; anything else reads as OpenBMC.
	Vendor string
	// CipherSuites advertised and accepted; default 3 and 17.
	CipherSuites []int
	// MaxSessions is the session table size (default DefaultMaxSessions).
	// A tiny table (1 or 2) makes "session table full" happen for real.
	MaxSessions int
	// SessionTimeout is the inactivity timeout (default 60 s).
	SessionTimeout time.Duration
	// SOLBusy starts the BMC with its SOL payload held by a phantom
	// session of another user from another address (see PhantomSession).
	SOLBusy bool
	// SOLReplay is how many bytes of console history a new SOL session is
	// sent first (0 = none, as most BMCs do; some keep a serial buffer).
	SOLReplay int
	// Faults are active from the start; SetFaults changes them later.
	Faults Faults
	// BufferSize is the UDP read buffer (default DefaultBufferSize).
	BufferSize int
}

// BMC is one running simulated IPMI BMC. Its methods are safe for
// concurrent use.
type BMC struct {
	cfg  Config
	m    *machine.Machine
	gb   *gobmc.BMC
	srv  *server.Server
	conn *packetConn
	hal  *simHAL

	started time.Time // SDR repository time stamps

	sess sessionBook
	sel  selState
	cmds commandCounter

	cancel    context.CancelFunc
	done      chan struct{}
	closeOnce sync.Once
}

// ErrConfig reports an unusable Config.
var ErrConfig = errors.New("invalid ipmi simulator config")

// Start binds cfg.Addr and serves until Close. The socket is bound before
// Start returns, so a client may talk to Addr() at once.
func Start(cfg Config) (*BMC, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	if cfg.MaxSessions == 0 {
		cfg.MaxSessions = DefaultMaxSessions
	}
	if cfg.SessionTimeout == 0 {
		cfg.SessionTimeout = DefaultSessionTimeout
	}
	if cfg.BufferSize == 0 {
		cfg.BufferSize = DefaultBufferSize
	}
	guid, err := guidBytes(cfg.Machine.ID.GUID, time.Now())
	if err != nil {
		return nil, fmt.Errorf("%w: machine %s: %w", ErrConfig, cfg.Machine.Name, err)
	}

	udp, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(cfg.Addr))
	if err != nil {
		return nil, fmt.Errorf("ipmi simulator for %s: listen udp %s: %w", cfg.Machine.Name, cfg.Addr, err)
	}

	s := &BMC{cfg: cfg, m: cfg.Machine, started: time.Now(), done: make(chan struct{})}
	s.hal = newHAL(s)
	s.sess.init()
	s.conn = newPacketConn(udp, s)
	s.conn.setFaults(cfg.Faults)

	s.gb = gobmc.New(deviceInfo(cfg.Vendor), guid, s.hal, gobmc.WithClock(clock.Real))
	// bmc.New fixes the table at bmc.MaxSessions (4); a fleet needs more,
	// and a test of "table full" needs fewer. Replacing the store before
	// Serve is safe: nothing has looked at it yet.
	s.gb.Sessions = gobmc.NewSessionStoreWithOptions(clock.Real,
		gobmc.WithMaxSessions(cfg.MaxSessions), gobmc.WithInactivityTimeout(cfg.SessionTimeout))
	s.gb.Sessions.SetOnRemove(s.sessionRemoved)
	if err := s.addUser(2, cfg.Username, cfg.Password); err != nil {
		_ = udp.Close()
		return nil, err
	}

	opts := []server.ServerOption{server.WithHandlerRegistry(registry()), server.WithServerBufferSize(cfg.BufferSize)}
	if len(cfg.CipherSuites) > 0 {
		ids := make([]types.CipherSuiteID, len(cfg.CipherSuites))
		for i, id := range cfg.CipherSuites {
			ids[i] = types.CipherSuiteID(id)
		}
		opts = append(opts, server.WithCipherSuites(ids))
	}
	s.srv = server.NewServer(s.gb, s.conn, opts...)

	if cfg.SOLBusy {
		if err := s.startPhantom(); err != nil {
			_ = s.srv.Close()
			return nil, fmt.Errorf("ipmi simulator for %s: sol-busy: %w", cfg.Machine.Name, err)
		}
	}

	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	go func() {
		defer close(s.done)
		_ = s.srv.Serve(ctx)
	}()
	return s, nil
}

func (c Config) check() error {
	switch {
	case c.Machine == nil:
		return fmt.Errorf("%w: no machine", ErrConfig)
	case !c.Addr.IsValid():
		return fmt.Errorf("%w: machine %s: no address", ErrConfig, c.Machine.Name)
	case c.Username == "" || len(c.Username) > gobmc.MaxUserNameLen:
		return fmt.Errorf("%w: machine %s: user name must have 1 to %d characters", ErrConfig, c.Machine.Name, gobmc.MaxUserNameLen)
	case len(c.Password) > gobmc.MaxPasswordLen:
		return fmt.Errorf("%w: machine %s: password longer than %d bytes", ErrConfig, c.Machine.Name, gobmc.MaxPasswordLen)
	case c.MaxSessions < 0 || c.MaxSessions > 63:
		return fmt.Errorf("%w: machine %s: max sessions must be 1 to 63", ErrConfig, c.Machine.Name)
	}
	for _, id := range c.CipherSuites {
		if id < 0 || id > 255 || !gobmc.SupportedCipherSuite(types.CipherSuiteID(id)) {
			return fmt.Errorf("%w: machine %s: cipher suite %d not supported", ErrConfig, c.Machine.Name, id)
		}
	}
	return nil
}

// addUser creates an enabled administrator with SOL access on the LAN
// channel.
func (s *BMC) addUser(id uint8, name, password string) error {
	u, err := s.gb.Users.Add(id, name)
	if err != nil {
		return fmt.Errorf("ipmi simulator for %s: user %q: %w", s.m.Name, name, err)
	}
	u.SetPassword([]byte(password))
	u.Enabled = true
	u.ChannelAccess[lanChannel] = gobmc.UserChannelAccess{MaxPrivilege: gobmc.PrivilegeLevelAdministrator, Enabled: true}
	return nil
}

const lanChannel = 1

// Addr is the UDP address the BMC serves on.
func (s *BMC) Addr() netip.AddrPort { return s.conn.addr }

// Machine is the server this BMC manages.
func (s *BMC) Machine() *machine.Machine { return s.m }

// Close stops serving and releases the socket. Every goroutine the BMC
// started has stopped when it returns (go-ipmi's per-packet handlers that
// were mid-flight finish on their own within microseconds). It is
// idempotent. It does not close the Machine.
func (s *BMC) Close() error {
	s.closeOnce.Do(func() {
		s.cancel()
		s.sess.stopPhantom()
		_ = s.srv.Close() // deactivates SOL, closes the socket: Serve returns
		<-s.done
		s.conn.stopDelayed()
	})
	return nil
}

// deviceInfo is Get Device ID's answer for a vendor: IANA manufacturer
// number, a product ID and a firmware version that vendor's BMCs report.
func deviceInfo(vendor string) gobmc.DeviceInfo {
	info := gobmc.DeviceInfo{
		DeviceID:       0x20,
		DeviceRevision: 0x01,
		IPMIVersion:    0x02, // IPMI 2.0 (BCD, low nibble major)
		// Sensor, SDR repository, SEL, FRU inventory, chassis device.
		AdditionalDeviceSupport: 0x8f,
	}
	switch vendor {
	case "dell":
		info.ManufacturerID, info.ProductID, info.FirmwareMajor, info.FirmwareMinor = 674, 0x0100, 7, 0x10
	case "hpe":
		info.ManufacturerID, info.ProductID, info.FirmwareMajor, info.FirmwareMinor = 11, 0x2000, 2, 0x78
	case "lenovo":
		info.ManufacturerID, info.ProductID, info.FirmwareMajor, info.FirmwareMinor = 19046, 0x0212, 9, 0x30
	case "supermicro":
		info.ManufacturerID, info.ProductID, info.FirmwareMajor, info.FirmwareMinor = 10876, 0x1b00, 1, 0x74
	default:
		info.ManufacturerID, info.ProductID, info.FirmwareMajor, info.FirmwareMinor = 49871, 0x0001, 2, 0x15
	}
	return info
}
