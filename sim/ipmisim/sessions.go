package ipmisim

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	gobmc "github.com/bougou/go-ipmi/pkg/bmc"
	"github.com/bougou/go-ipmi/pkg/types"
)

// Session bookkeeping. go-ipmi's session store only has a removal hook and
// a count that lumps finished handshakes with half-open ones (a half-open
// handshake keeps its slot up to the 60 s inactivity timeout). The BMC
// therefore watches the handshake on the wire: the Open Session Response
// pairs the console's session ID with the BMC's, and a RAKP Message 4 with
// status 0 is the moment a session is established. Removal (Close Session
// or inactivity) arrives through the store's hook.

// Stats is what a BMC has seen, for tests that assert a client leaks
// nothing and did what it claims.
type Stats struct {
	// SessionsOpen is established sessions now (RAKP completed, not yet
	// closed or expired). The sol-busy phantom is not counted.
	SessionsOpen int
	// SessionsHalfOpen is handshakes holding a session slot now: Open
	// Session answered, RAKP not completed.
	SessionsHalfOpen int
	// SessionsOpenV15 is active IPMI v1.5 ("-I lan") sessions now. They
	// have a table of their own and are not in the other counters.
	SessionsOpenV15 int
	// SessionsOpened and SessionsClosed count established sessions over
	// the BMC's life; Closed includes expired ones.
	SessionsOpened, SessionsClosed uint64
	// SessionsExpired is established sessions the BMC dropped after the
	// inactivity timeout: the client never sent Close Session (a leak).
	SessionsExpired uint64
	// AuthFailures is handshakes refused at RAKP 2 or 4 (bad user or
	// password, or the console rejecting the BMC's RAKP 2, as it does when
	// its password differs from the BMC's), not handshakes a console
	// abandoned for other reasons.
	AuthFailures uint64
	// SessionsRefused is Open Session Requests answered "insufficient
	// resources" (table full, real or injected).
	SessionsRefused uint64
	// PhantomSession is the sol-busy phantom's session ID, 0 if none.
	PhantomSession uint32
	// SOLActive is SOL payloads active for real clients now (0 or 1: one
	// serial port). SOLPhantom says the phantom holds it.
	SOLActive  int
	SOLPhantom bool
	// SOLActivations counts successful Activate Payload commands.
	SOLActivations uint64
	// PacketsReceived counts UDP packets read; PacketsDropped those a
	// fault swallowed.
	PacketsReceived, PacketsDropped uint64
	// Commands counts dispatched IPMI commands by network function and
	// command, including ones the BMC does not implement.
	Commands map[Command]uint64
}

// Command names an IPMI request by network function (even, request) and
// command code.
type Command struct{ NetFn, Cmd uint8 }

// Some commands, for Stats.Commands lookups.
var (
	CmdGetChassisStatus  = Command{0x00, 0x01}
	CmdChassisControl    = Command{0x00, 0x02}
	CmdGetDeviceID       = Command{0x06, 0x01}
	CmdGetSystemGUID     = Command{0x06, 0x37}
	CmdCloseSession      = Command{0x06, 0x3c}
	CmdActivatePayload   = Command{0x06, 0x48}
	CmdDeactivatePayload = Command{0x06, 0x49}
	CmdGetSensorReading  = Command{0x04, 0x2d}
	CmdGetSELEntry       = Command{0x0a, 0x43}
	CmdAddSELEntry       = Command{0x0a, 0x44}
	CmdClearSEL          = Command{0x0a, 0x47}
)

func (c Command) String() string { return fmt.Sprintf("netfn 0x%02x cmd 0x%02x", c.NetFn, c.Cmd) }

// Stats returns a snapshot of the counters.
func (s *BMC) Stats() Stats {
	st := Stats{
		PacketsReceived: s.conn.received.Load(),
		PacketsDropped:  s.conn.dropped.Load(),
		SessionsRefused: s.sess.refused.Load(),
		Commands:        s.cmds.snapshot(),
	}
	inTable := s.gb.Sessions.Count()
	b := &s.sess
	b.mu.Lock()
	st.SessionsOpen = len(b.open)
	st.SessionsOpened, st.SessionsClosed, st.SessionsExpired = b.opened, b.closed, b.expired
	st.AuthFailures, st.SOLActivations = b.authFailed, b.solActivations
	phantoms := 0
	if b.phantom != nil {
		st.PhantomSession = b.phantom.id
		phantoms = 1
	}
	b.mu.Unlock()
	st.SessionsHalfOpen = max(0, inTable-st.SessionsOpen-phantoms)
	st.SessionsOpenV15 = s.gb.V15Sessions.CountActiveSessions()
	if holder := s.gb.SOL.ActiveSessionID(1); holder != 0 {
		if holder == st.PhantomSession {
			st.SOLPhantom = true
		} else {
			st.SOLActive = 1
		}
	}
	return st
}

// OpenSessions is Stats().SessionsOpen + SessionsOpenV15, cheaply: every
// session a client holds (the phantom aside), for polling a fleet.
func (s *BMC) OpenSessions() int {
	v15 := s.gb.V15Sessions.CountActiveSessions()
	s.sess.mu.Lock()
	defer s.sess.mu.Unlock()
	return len(s.sess.open) + v15
}

// sessionInfo is what Get Session Info reports about a session other than
// the caller's: a snapshot kept here, because another session's fields are
// guarded by its own lock, which a handler must not take.
type sessionInfo struct {
	id      uint32
	handle  uint8
	userID  uint8
	priv    uint8
	addr    netip.AddrPort
	phantom bool
}

type pendingSession struct {
	console uint32
	addr    netip.AddrPort
}

type sessionBook struct {
	mu       sync.Mutex
	pending  map[uint32]pendingSession // BMC session ID -> handshake
	open     map[uint32]*sessionInfo
	byClient map[uint32]bool // Close Session in progress
	phantom  *sessionInfo
	keep     *time.Timer // keeps the phantom from expiring

	opened, closed, expired, authFailed, solActivations uint64
	refused                                             atomic.Uint64
}

func (b *sessionBook) init() {
	b.pending = map[uint32]pendingSession{}
	b.open = map[uint32]*sessionInfo{}
	b.byClient = map[uint32]bool{}
}

// sniffOutbound watches handshake responses on their way out.
func (b *sessionBook) sniffOutbound(s *BMC, pkt []byte, to net.Addr) {
	payloadType, p, ok := rmcpPlusSessionless(pkt)
	if !ok || len(p) < 8 {
		return
	}
	ua, _ := to.(*net.UDPAddr)
	if ua == nil {
		return
	}
	addr := ua.AddrPort()
	switch payloadType {
	case payloadOpenSessionResponse:
		switch {
		case p[1] == 0x01:
			b.refused.Add(1)
		case p[1] == 0 && len(p) >= 12:
			b.mu.Lock()
			b.pending[le32(p[8:12])] = pendingSession{console: le32(p[4:8]), addr: addr}
			b.mu.Unlock()
		}
	case payloadRAKP2:
		if p[1] != 0 {
			b.mu.Lock()
			b.authFailed++
			b.mu.Unlock()
		}
	case payloadRAKP4:
		if p[1] != 0 {
			if authStatus(p[1]) {
				b.mu.Lock()
				b.authFailed++
				b.mu.Unlock()
			}
			return
		}
		b.established(s, le32(p[4:8]), addr)
	}
}

// authStatus reports whether an RMCP+ status code in RAKP 4 says the
// handshake failed authentication (IPMI v2.0 table 13-15): a bad name,
// role, proof or GUID. Other codes answer a console that gave up on a
// handshake (RAKP 3 with "insufficient resources", say, when its deadline
// passed, or to free the slot a retransmitted Open Session Request took);
// those are not authentication failures.
func authStatus(code byte) bool {
	switch code {
	case 0x09, 0x0a, 0x0c, 0x0d, 0x0e, 0x0f: // role, name length, name, GUID, proof
		return true
	}
	return false
}

// sniffInbound watches requests on their way in: a RAKP 3 with an error
// status closes the session it names in go-ipmi's BMC, in whatever state
// (a console freeing a handshake it gave up on), which is the client's
// doing, not an expiry.
func (b *sessionBook) sniffInbound(pkt []byte) {
	payloadType, p, ok := rmcpPlusSessionless(pkt)
	if !ok || payloadType != payloadRAKP3 || len(p) < 8 || p[1] == 0 {
		return
	}
	id := le32(p[4:8])
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, open := b.open[id]; open {
		b.byClient[id] = true
	}
}

// established records the session whose RAKP 4 just went to addr. A
// console that retransmitted its Open Session Request has several pending
// handshakes with the same console session ID; the one go-ipmi activated
// is the one.
func (b *sessionBook) established(s *BMC, console uint32, addr netip.AddrPort) {
	b.mu.Lock()
	var candidates []uint32
	for id, p := range b.pending {
		if p.console == console && p.addr == addr {
			candidates = append(candidates, id)
		}
	}
	b.mu.Unlock()
	for _, id := range candidates {
		sess, err := s.gb.Sessions.Get(id)
		if err != nil {
			continue // gone already
		}
		// RAKP 4 is sent after the RAKP 3 handler has returned, so no
		// goroutine holding a session lock waits on this one; State is
		// written with the session lock held.
		sess.ProcMu.Lock()
		active := sess.State == gobmc.SessionStateActive
		info := &sessionInfo{id: id, handle: sess.Handle, priv: uint8(sess.PrivilegeLevel), addr: addr}
		if sess.User != nil {
			info.userID = sess.User.ID
		}
		sess.ProcMu.Unlock()
		if !active {
			continue
		}
		b.mu.Lock()
		if _, still := b.pending[id]; still { // not removed meanwhile
			delete(b.pending, id)
			b.open[id] = info
			b.opened++
		}
		b.mu.Unlock()
		return
	}
}

// sessionRemoved is the session store's removal hook: Close Session,
// inactivity eviction, or a handshake pushed out of a full table.
func (s *BMC) sessionRemoved(id uint32) {
	s.gb.SOL.DeactivateBySession(id) // go-ipmi's own hook, replaced by this one
	b := &s.sess
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.pending, id)
	if _, ok := b.open[id]; ok {
		delete(b.open, id)
		b.closed++
		if !b.byClient[id] {
			b.expired++
		}
	}
	delete(b.byClient, id)
	if b.phantom != nil && b.phantom.id == id {
		b.phantom = nil
	}
}

// observed is called by the command middleware after every in-session
// command, with the session's lock held by the dispatcher.
func (b *sessionBook) observed(sess *gobmc.Session) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if info, ok := b.open[sess.BMCID]; ok {
		info.priv = uint8(sess.PrivilegeLevel)
	}
}

func (b *sessionBook) closing(id uint32, on bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if on {
		b.byClient[id] = true
	} else {
		delete(b.byClient, id)
	}
}

func (b *sessionBook) solActivated() {
	b.mu.Lock()
	b.solActivations++
	b.mu.Unlock()
}

// The phantom session of the sol-busy scenario: another administrator,
// logged in from another address, whose SOL session is active. It exists
// only in the BMC's tables: no packet is ever sent to its address (SOL is
// activated before the address is known, so go-ipmi starts no sender), and
// the address is from TEST-NET-1, which routes nowhere.
// PhantomUser is the user name the phantom session is logged in as.
const PhantomUser = "oncall"

// PhantomAddr is the address the phantom session claims to come from.
var PhantomAddr = netip.MustParseAddrPort("192.0.2.77:50123")

func (s *BMC) startPhantom() error {
	pw := make([]byte, 16)
	_, _ = rand.Read(pw)
	if err := s.addUser(3, PhantomUser, fmt.Sprintf("%x", pw)[:20]); err != nil {
		return err
	}
	user, err := s.gb.Users.Get(3)
	if err != nil {
		return err
	}
	var console [4]byte
	_, _ = rand.Read(console[:])
	sess, err := s.gb.Sessions.Allocate(binary.LittleEndian.Uint32(console[:])|1,
		types.AuthAlg_HMAC_SHA256, types.IntegrityAlg_HMAC_SHA256_128, types.CryptAlg_AES_CBC_128,
		gobmc.PrivilegeLevelAdministrator, lanChannel)
	if err != nil {
		return err
	}
	if err := s.gb.Sessions.Activate(sess.BMCID); err != nil {
		return err
	}
	sess.ProcMu.Lock()
	sess.User = user
	sess.PrivilegeLevel = gobmc.PrivilegeLevelAdministrator
	sess.K2 = make([]byte, 16)
	_, _ = rand.Read(sess.K2)
	sess.ProcMu.Unlock()
	if _, err := s.gb.SOL.Activate(context.Background(), sess, true, true); err != nil {
		return err
	}
	info := &sessionInfo{id: sess.BMCID, handle: sess.Handle, userID: user.ID,
		priv: uint8(gobmc.PrivilegeLevelAdministrator), addr: PhantomAddr, phantom: true}
	b := &s.sess
	b.mu.Lock()
	b.phantom = info
	b.mu.Unlock()
	s.keepPhantom(sess.BMCID)
	return nil
}

// keepPhantom refreshes the phantom's inactivity clock a few times per
// timeout, as the phantom's client would by polling. Timers, not a
// goroutine: nothing waits while nothing happens.
func (s *BMC) keepPhantom(id uint32) {
	b := &s.sess
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.phantom == nil || b.phantom.id != id {
		return
	}
	s.gb.Sessions.Touch(id)
	b.keep = time.AfterFunc(s.cfg.SessionTimeout/4, func() { s.keepPhantom(id) })
}

func (b *sessionBook) stopPhantom() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.keep != nil {
		b.keep.Stop()
	}
	b.phantom = nil
}

// handleGetSessionInfo replaces go-ipmi's Get Session Info, which answers
// only for the caller's own session, with one that also looks sessions up
// by index (Nth active session), handle or ID (IPMI 2.0 section 22.20), so
// a console can find out who holds SOL before taking it over.
func handleGetSessionInfo(ctx context.Context, hctx *handlersContext, req []byte) ([]byte, types.CompletionCode, error) {
	if len(req) < 1 {
		return nil, types.CodeRequestDataTruncated, nil
	}
	if hctx.Session == nil {
		// IPMI v1.5 session: go-ipmi's handler knows those.
		return v15Registry().Dispatch(ctx, hctx, 0x06, 0x3d, req)
	}
	s := simOf(hctx.BMC)
	b := &s.sess
	b.mu.Lock()
	all := make([]sessionInfo, 0, len(b.open)+1)
	for _, info := range b.open {
		all = append(all, *info)
	}
	if b.phantom != nil {
		all = append(all, *b.phantom)
	}
	b.mu.Unlock()
	sort.Slice(all, func(i, j int) bool { return all[i].handle < all[j].handle })

	var found *sessionInfo
	switch idx := req[0]; idx {
	case 0x00:
		info := sessionInfo{id: hctx.Session.BMCID, handle: hctx.Session.Handle, priv: uint8(hctx.Session.PrivilegeLevel)}
		if hctx.Session.User != nil {
			info.userID = hctx.Session.User.ID
		}
		if ua, ok := hctx.Session.GetAddr().(*net.UDPAddr); ok {
			info.addr = ua.AddrPort()
		}
		found = &info
	case 0xfe:
		if len(req) < 2 {
			return nil, types.CodeRequestDataTruncated, nil
		}
		if i := slices.IndexFunc(all, func(x sessionInfo) bool { return x.handle == req[1] }); i >= 0 {
			found = &all[i]
		}
	case 0xff:
		if len(req) < 5 {
			return nil, types.CodeRequestDataTruncated, nil
		}
		id := le32(req[1:5])
		if i := slices.IndexFunc(all, func(x sessionInfo) bool { return x.id == id }); i >= 0 {
			found = &all[i]
		}
	default:
		if int(idx) <= len(all) {
			found = &all[idx-1]
		}
	}
	head := []byte{0, uint8(min(63, s.gb.Sessions.Cap())), uint8(min(63, len(all)))}
	if found == nil {
		// No such session: handle 00h and the table counts only, as the
		// specification has it. (ipmitool "session info all" prints one
		// such stub per free slot; answering 0xCB instead would make it
		// exit 1.)
		return head, types.CodeOK, nil
	}
	head[0] = found.handle
	resp := append(head, found.userID, found.priv, 0x10|lanChannel)
	if a := found.addr.Addr().Unmap(); a.Is4() {
		ip := a.As4()
		resp = append(resp, ip[:]...)
		resp = append(resp, 0, 0, 0, 0, 0, 0) // MAC, not tracked
		resp = binary.LittleEndian.AppendUint16(resp, found.addr.Port())
	}
	return resp, types.CodeOK, nil
}
