// Package redfishsim is a Redfish BMC simulator: an HTTPS server on one IP
// address that serves a real vendor's captured service tree (Dell iDRAC9,
// HPE iLO 5, Lenovo XCC, Supermicro, or DMTF's reference mockup) over a
// simulated machine.
//
// The tree is served as captured, quirks included, because rmm's client must
// cope with them; on top of it the simulator makes the parts rmm drives
// live: session login and logout (and Basic auth), the ComputerSystem's
// PowerState, UUID and SerialNumber, the Reset action (checked against the
// reset types the tree advertises), the vendor's System Event Log
// equivalent, which shows the machine's SEL records in that vendor's entry
// style and is cleared by its ClearLog action, and the machine's CPU and
// inlet temperatures with the health rollups they raise (health.go). The machine is shared with
// the IPMI simulator, as one chassis is shared by both protocols on real
// hardware.
//
// Faults for tests: a dead BMC (TCP accepted, nothing answered; SetDead
// switches it at run time, existing connections included), delays,
// reset connections, malformed or truncated JSON, links and redirects that
// name a host instead of an IP.
//
// The package prints nothing; Config.Log receives one line per request.
// Servers are independent and safe for concurrent use; a process may run
// hundreds.
package redfishsim

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/rmm-project/rmm/sim/machine"
)

// Config describes one simulated Redfish BMC.
type Config struct {
	// Addr is the IP address and port to listen on. Port 0 picks a free
	// port; Server.Addr reports it.
	Addr netip.AddrPort
	// Vendor selects the tree: dell, hpe, lenovo, supermicro or dmtf.
	Vendor string
	// Username and Password are the one account the BMC knows.
	Username, Password string
	// Machine is the simulated server: power state, SEL records and
	// identity come from it. Required; the caller owns it.
	Machine *machine.Machine
	// Delay slows every response (the "slow BMC" scenario).
	Delay time.Duration
	// Dead accepts TCP connections and never answers, not even the TLS
	// handshake (a hung BMC); SetDead changes it at run time.
	Dead bool
	// Cert is the server certificate; nil generates a self-signed ECDSA
	// P-256 one for Addr's IP.
	Cert *tls.Certificate
	// Log, when set, receives one line per request. It must be safe for
	// concurrent use if several servers share it.
	Log io.Writer
	// IPMIPort, when set, replaces the port the tree advertises for IPMI
	// Serial-over-LAN (ComputerSystem.SerialConsole.IPMI.Port), so a client
	// that follows the advertisement reaches the simulated IPMI side.
	IPMIPort uint16
}

// Faults are misbehaviours a test can switch on while a server runs.
type Faults struct {
	// Only limits the faults to request paths starting with this prefix
	// ("/redfish/v1/Systems"); empty means every path.
	Only string
	// ResetConnections answers by resetting the TCP connection.
	ResetConnections bool
	// MalformedJSON answers 200 with a body that is not valid JSON.
	MalformedJSON bool
	// TruncateBody sends half of the body promised by Content-Length,
	// then closes the connection.
	TruncateBody bool
	// AbsoluteHost makes every link (@odata.id, target, ActionInfo,
	// nextLink, the session Location) an absolute URL naming this host,
	// e.g. "bmc.example.com": https://bmc.example.com/redfish/v1/...
	AbsoluteHost string
	// RedirectHost answers every request with a 307 redirect to the same
	// path on https://RedirectHost.
	RedirectHost string
	// Delay adds to Config.Delay.
	Delay time.Duration
	// NoSessions hides the session service (no Links.Sessions in the
	// service root, logins refused 405), as on BMCs that only do Basic
	// authentication.
	NoSessions bool
	// HideLegacy removes the Chassis Thermal and Power resources (and the
	// links to them), as newer firmware does, so clients must use
	// ThermalSubsystem, PowerSubsystem and Sensors.
	HideLegacy bool
}

// Request is one request the server received, for tests.
type Request struct {
	Method string
	Path   string
	// Body is the request body (a login's password replaced).
	Body string
	// Auth is "session", "basic" or "" (none or invalid).
	Auth   string
	Status int
}

// Server is a running simulated BMC.
type Server struct {
	cfg  Config
	tree *tree
	addr netip.AddrPort
	fp   string
	cert tls.Certificate

	ln   net.Listener
	http *http.Server
	done chan struct{}
	wg   sync.WaitGroup

	mu          sync.Mutex
	faults      Faults
	sessions    map[string]*session // by id
	nSessions   int
	requests    []Request
	resetTypes  []string
	clearedLogs []string
	cleared     map[string]bool // log services cleared (other than the SEL)
	selClears   int             // Machine.SELClears() at start
	closed      bool
	logMu       sync.Mutex
	dead        deadSwitch
}

type session struct {
	id, token, user string
	lastUsed        time.Time
}

// maxRequests bounds the request log of a long-running server.
const maxRequests = 10000

// Start listens on cfg.Addr and serves until Close.
func Start(cfg Config) (*Server, error) {
	if !cfg.Addr.Addr().IsValid() {
		return nil, errors.New("redfishsim: Addr must be an IP address and port")
	}
	if cfg.Machine == nil {
		return nil, errors.New("redfishsim: Machine is required")
	}
	t, err := loadTree(cfg.Vendor)
	if err != nil {
		return nil, err
	}
	s := &Server{
		cfg:       cfg,
		tree:      t,
		done:      make(chan struct{}),
		sessions:  map[string]*session{},
		cleared:   map[string]bool{},
		selClears: cfg.Machine.SELClears(),
	}
	if cfg.Cert != nil {
		s.cert = *cfg.Cert
	} else {
		s.cert, err = SelfSigned(cfg.Addr.Addr())
		if err != nil {
			return nil, err
		}
	}
	if len(s.cert.Certificate) == 0 {
		return nil, errors.New("redfishsim: certificate has no leaf")
	}
	sum := sha256.Sum256(s.cert.Certificate[0])
	s.fp = hex.EncodeToString(sum[:])

	ln, err := net.ListenTCP("tcp", net.TCPAddrFromAddrPort(cfg.Addr))
	if err != nil {
		return nil, fmt.Errorf("redfishsim: listen %s: %w", cfg.Addr, err)
	}
	s.ln = ln
	s.addr = ln.Addr().(*net.TCPAddr).AddrPort()
	// A listener on 0.0.0.0 or :: reports the unspecified address; keep
	// the caller's IP so Addr is always dialable.
	s.addr = netip.AddrPortFrom(cfg.Addr.Addr().Unmap(), s.addr.Port())

	s.dead.set(cfg.Dead)
	errLog := io.Discard
	if cfg.Log != nil {
		errLog = &lineWriter{s: s}
	}
	s.http = &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          log.New(errLog, "", 0),
		// HTTP/1.1 only, as BMCs speak it; it also lets the reset fault
		// hijack the connection.
		TLSNextProto: map[string]func(*http.Server, *tls.Conn, http.Handler){},
		TLSConfig: &tls.Config{
			Certificates: []tls.Certificate{s.cert},
			MinVersion:   tls.VersionTLS12,
		},
		BaseContext: func(net.Listener) context.Context { return context.Background() },
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		_ = s.http.ServeTLS(switchListener{Listener: ln, s: s}, "", "")
	}()
	return s, nil
}

// Addr is the address the server listens on.
func (s *Server) Addr() netip.AddrPort { return s.addr }

// Fingerprint is the SHA-256 of the leaf certificate, lowercase hex.
func (s *Server) Fingerprint() string { return s.fp }

// Vendor is the tree the server serves.
func (s *Server) Vendor() string { return s.cfg.Vendor }

// SELService is the URI of the log service that shows the machine's SEL.
func (s *Server) SELService() string { return s.tree.sel.path }

// OpenSessions counts live (not logged out, not expired) sessions.
func (s *Server) OpenSessions() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expireLocked()
	return len(s.sessions)
}

// SetFaults replaces the active faults.
func (s *Server) SetFaults(f Faults) {
	s.mu.Lock()
	s.faults = f
	s.mu.Unlock()
}

// Requests returns the requests received so far, oldest first.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

// ResetTypes returns every ResetType posted to a Reset action, allowed or
// not, in order.
func (s *Server) ResetTypes() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.resetTypes...)
}

// ClearedLogs returns the log services whose ClearLog action was posted,
// in order.
func (s *Server) ClearedLogs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.clearedLogs...)
}

// Close stops the server and drops every connection and session. It is
// safe to call more than once.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.done)
	s.sessions = map[string]*session{}
	s.mu.Unlock()

	err := s.http.Close()
	s.wg.Wait()
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
}

// logf writes one line to Config.Log.
func (s *Server) logf(format string, args ...any) {
	if s.cfg.Log == nil {
		return
	}
	line := fmt.Sprintf("redfishsim %s %s: ", s.cfg.Vendor, s.addr) + fmt.Sprintf(format, args...)
	if !strings.HasSuffix(line, "\n") {
		line += "\n"
	}
	s.logMu.Lock()
	defer s.logMu.Unlock()
	_, _ = io.WriteString(s.cfg.Log, line)
}

// lineWriter sends net/http's own error log (TLS handshake failures) to
// Config.Log with the server's prefix.
type lineWriter struct{ s *Server }

func (w *lineWriter) Write(p []byte) (int, error) {
	w.s.logf("%s", p)
	return len(p), nil
}

// sleep waits d, or less when the request or the server ends first. It
// reports whether the full delay passed.
func (s *Server) sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
	case <-s.done:
	}
	return false
}
