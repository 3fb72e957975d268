package rmcp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/bougou/go-ipmi/pkg/types"
	"github.com/rmm-project/rmm/bmc"
	"github.com/rmm-project/rmm/secret"
)

// Config says how to open a session.
type Config struct {
	// Addr is the BMC's IPMI endpoint, an IP address and UDP port.
	Addr netip.AddrPort
	// Username and Password are the BMC credentials (at most 16 and 20
	// bytes: the sizes RAKP carries).
	Username string
	Password secret.Value
	// CipherSuite is 1, 2, 3, 15, 16 or 17; 0 tries AutoSuites in order.
	CipherSuite int
	// Privilege is the highest privilege to request; 0 means
	// ADMINISTRATOR. If the BMC refuses that role for the user, lower
	// roles are tried, down to USER.
	Privilege types.PrivilegeLevel
}

// Stats counts what a session sent and what it refused. Dropped packets
// are never errors by themselves; the counts show a flaky link or a BMC
// sending garbage.
type Stats struct {
	Sent             int // packets written, retransmissions included
	Retransmits      int
	Received         int // packets read
	DroppedMalformed int // unparseable, truncated, undecryptable
	DroppedIntegrity int // AuthCode did not verify
	DroppedWindow    int // sequence number replayed or out of the window
	DroppedForeign   int // another session ID, or a packet type we did not expect
	Stale            int // valid answers to requests no longer waited for
	Abandoned        int // half-open BMC sessions freed with a RAKP 3 error status
}

// Session is an open RMCP+ session with one BMC.
//
// A Session serialises its callers: each method takes the session's mutex
// for the whole exchange, so one request is on the wire at a time and
// sequence numbers cannot interleave. While a SOL console is open the
// console's goroutine owns the session and other calls fail with ErrBusy
// instead of waiting for the console to end.
type Session struct {
	mu   sync.Mutex
	conn net.Conn
	addr netip.AddrPort

	suite     Suite
	user      string
	role      uint8                // RAKP role byte: privilege | name-only lookup
	maxPriv   types.PrivilegeLevel // the privilege the session was opened for
	curPriv   types.PrivilegeLevel // what Set Session Privilege Level confirmed
	consoleID uint32               // our session ID (BMC puts it in its packets)
	bmcID     uint32               // the BMC's session ID (we put it in ours)
	// consoleIDs are every console session ID this Session's handshakes
	// used, abandoned the BMC sessions freed with a RAKP 3 error: how
	// stray Open Session Responses are recognised, once each.
	consoleIDs, abandoned []uint32
	active                bool // RAKP 4 verified
	closed                bool

	k      *keys
	outSeq uint32 // last session sequence number sent
	in     window
	rqSeq  uint8 // last IPMI requester sequence number used
	tag    uint8 // last RMCP+ message tag used

	rbuf  []byte
	wbuf  []byte
	stats Stats
	rtt   time.Duration // round trip of the last exchange answered at once

	// sol is set while a console owns the session; solInput receives the
	// SOL payloads read while the console's goroutine waits for an IPMI
	// answer (a keepalive), so no console output is lost meanwhile.
	sol      *SOL
	solInput func(payload []byte)
}

// Addr returns the BMC endpoint of the session.
func (s *Session) Addr() netip.AddrPort { return s.addr }

// Suite returns the cipher suite the session negotiated.
func (s *Session) Suite() Suite { return s.suite }

// Privilege returns the privilege level the session was opened for.
func (s *Session) Privilege() types.PrivilegeLevel { return s.maxPriv }

// BMCSessionID returns the session ID the BMC assigned.
func (s *Session) BMCSessionID() uint32 { return s.bmcID }

// Stats returns a copy of the session's counters.
func (s *Session) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

// lock takes the session for one operation, refusing when it is closed or
// owned by a console.
func (s *Session) lock() error {
	s.mu.Lock()
	switch {
	case s.closed:
		s.mu.Unlock()
		return fmt.Errorf("%w: session to %s is closed", bmc.ErrProtocol, s.addr)
	case s.sol != nil:
		s.mu.Unlock()
		return fmt.Errorf("%w: the session to %s is serving a SOL console", bmc.ErrBusy, s.addr)
	}
	return nil
}

// Do sends an IPMI command and decodes its answer into resp (which may be
// nil when only the completion code matters). A non-zero completion code
// is returned as a *CompletionError.
func (s *Session) Do(ctx context.Context, req types.Request, resp types.Response) error {
	if err := s.lock(); err != nil {
		return err
	}
	defer s.mu.Unlock()
	return s.do(ctx, req, resp, callOpts{})
}

// DoOnce is Do for commands that must not run twice, such as Chassis
// Control: the first retransmission waits a full second, so a BMC that is
// merely slow to answer does not receive (and perform) the command again.
func (s *Session) DoOnce(ctx context.Context, req types.Request, resp types.Response) error {
	if err := s.lock(); err != nil {
		return err
	}
	defer s.mu.Unlock()
	return s.do(ctx, req, resp, callOpts{firstRTO: time.Second})
}

// Raw sends a command given as NetFn, command and data bytes and returns the
// response data after the completion code.
func (s *Session) Raw(ctx context.Context, netFn types.NetFn, cmd uint8, data []byte) ([]byte, error) {
	if err := s.lock(); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	r, err := s.call(ctx, types.Command{NetFn: netFn, ID: cmd}, data, callOpts{})
	if err != nil {
		return nil, err
	}
	return append([]byte(nil), r...), nil
}

// do is Do with the lock held.
func (s *Session) do(ctx context.Context, req types.Request, resp types.Response, o callOpts) error {
	cmd := req.Command()
	data, err := s.call(ctx, cmd, req.Pack(), o)
	if err != nil {
		return err
	}
	if resp == nil {
		return nil
	}
	return unpack(cmd, resp, data)
}

// unpack decodes response data with a go-ipmi Response. go-ipmi's decoders
// are outside code fed with bytes from the network; a panic in one becomes
// a protocol error here rather than a crash of rmm.
func unpack(cmd types.Command, resp types.Response, data []byte) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: %s: cannot decode the answer (%v)", bmc.ErrProtocol, lowerName(cmd), r)
		}
	}()
	if err := resp.Unpack(data); err != nil {
		return fmt.Errorf("%w: %s: cannot decode the answer: %w", bmc.ErrProtocol, lowerName(cmd), err)
	}
	return nil
}

func lowerName(cmd types.Command) string {
	if cmd.Name == "" {
		return fmt.Sprintf("netfn %#02x cmd %#02x", uint8(cmd.NetFn), cmd.ID)
	}
	b := []byte(cmd.Name)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// EnsurePrivilege raises the session to level (capped at the level it was
// opened for) with Set Session Privilege Level, once. Sessions start at a
// BMC-chosen level (USER on spec-following BMCs such as ipmi_sim), which is
// enough for status reads; only commands that change things pay this round
// trip.
func (s *Session) EnsurePrivilege(ctx context.Context, level types.PrivilegeLevel) error {
	if err := s.lock(); err != nil {
		return err
	}
	defer s.mu.Unlock()
	return s.ensurePrivilege(ctx, level)
}

func (s *Session) ensurePrivilege(ctx context.Context, level types.PrivilegeLevel) error {
	if level > s.maxPriv {
		level = s.maxPriv
	}
	if s.curPriv >= level {
		return nil
	}
	data, err := s.call(ctx, types.CommandSetSessionPrivilegeLevel, []byte{uint8(level)}, callOpts{})
	if err != nil {
		var ce *CompletionError
		if errors.As(err, &ce) && (ce.Code == 0x80 || ce.Code == 0x81) {
			return &AuthError{
				Msg:  fmt.Sprintf("the BMC refused privilege %s for this session (completion code %#02x)", level, ce.Code),
				hint: "give the user ADMINISTRATOR (or OPERATOR) privilege on the BMC's LAN channel",
			}
		}
		return err
	}
	if len(data) >= 1 && types.PrivilegeLevel(data[0]&0x0f) >= level {
		s.curPriv = types.PrivilegeLevel(data[0] & 0x0f)
	} else {
		s.curPriv = level
	}
	return nil
}

// closeBudget bounds Close Session (and the cleanup of a handshake that
// failed after RAKP 3): three copies on the command schedule (0, 250 ms,
// 750 ms), so a link that loses every other packet still closes the
// session; two copies in 500 ms left sessions behind at 50% loss. It stays
// under bmc.CloseTimeout.
const closeBudget = 1500 * time.Millisecond

// Close ends the session: Close Session best effort, under its own 1.5 s
// deadline even when ctx is already cancelled (a session left open holds a
// slot in the BMC's small table for a minute), then the socket. Close
// Session's own outcome is not reported: when its answer is lost the BMC
// has usually closed the session anyway, and either way there is nothing
// left to do but let the BMC time it out. Calling Close again does nothing.
func (s *Session) Close(ctx context.Context) error {
	s.mu.Lock()
	sol := s.sol
	s.mu.Unlock()
	if sol != nil {
		// The console deactivates its payload and hands the session back.
		_ = sol.Close(ctx)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	if s.active {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), closeBudget)
		id := []byte{byte(s.bmcID), byte(s.bmcID >> 8), byte(s.bmcID >> 16), byte(s.bmcID >> 24)}
		_, _ = s.call(cctx, types.CommandCloseSession, id, callOpts{})
		cancel()
		s.active = false
	}
	if err := s.conn.Close(); err != nil {
		return fmt.Errorf("%w: close session socket: %w", bmc.ErrProtocol, err)
	}
	return nil
}

// abort closes the socket without a word to the BMC; used when Open fails
// before a session exists.
func (s *Session) abort() {
	s.closed = true
	_ = s.conn.Close()
}
