package rmcp

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/bougou/go-ipmi/pkg/command/app"
	ipmicrypto "github.com/bougou/go-ipmi/pkg/crypto"
	"github.com/bougou/go-ipmi/pkg/rmcpplus"
	"github.com/bougou/go-ipmi/pkg/types"
	"github.com/rmm-project/rmm/bmc"
)

// Sizes RAKP can carry (IPMI v2.0 §13.20, §13.31).
const (
	maxUserLen     = 16
	maxPasswordLen = 20
)

// Open dials the BMC and opens an authenticated RMCP+ session: Get Channel
// Authentication Capabilities, Open Session, RAKP 1-4. With CipherSuite 0
// it tries AutoSuites in order, moving on only when the BMC says it does not
// support a suite. On any failure the socket is closed before Open returns.
func Open(ctx context.Context, cfg Config) (*Session, error) {
	ids := AutoSuites()
	if cfg.CipherSuite != 0 {
		ids = []int{cfg.CipherSuite}
	}
	for _, id := range ids {
		if _, err := LookupSuite(id); err != nil {
			return nil, fmt.Errorf("%w: %w", bmc.ErrUnsupported, err)
		}
	}
	if len(cfg.Username) > maxUserLen {
		return nil, &AuthError{Msg: fmt.Sprintf("user name is %d bytes; IPMI allows at most %d", len(cfg.Username), maxUserLen)}
	}
	if len(cfg.Password.Reveal()) > maxPasswordLen {
		return nil, &AuthError{
			Msg:  fmt.Sprintf("the password is longer than the %d bytes IPMI v2.0 can use", maxPasswordLen),
			hint: "IPMI passwords are at most 20 bytes; set a shorter one on the BMC and in the inventory",
		}
	}
	priv := cfg.Privilege
	if priv == 0 || priv > types.PrivilegeLevelAdministrator {
		priv = types.PrivilegeLevelAdministrator
	}

	conn, err := bmc.DialIP(ctx, "udp", cfg.Addr.String())
	if err != nil {
		return nil, fmt.Errorf("open session: %w", err)
	}
	s := &Session{
		conn: conn,
		addr: cfg.Addr,
		user: cfg.Username,
		rbuf: make([]byte, maxPacket),
		wbuf: make([]byte, 0, 512),
	}
	ok := false
	defer func() {
		if !ok {
			s.abort()
		}
	}()

	if err := s.checkChannel(ctx, priv); err != nil {
		return nil, err
	}
	var lastErr error
	for _, id := range ids {
		suite, _ := LookupSuite(id)
		lastErr = s.openWithFallback(ctx, suite, cfg, priv)
		if lastErr == nil {
			ok = true
			return s, nil
		}
		if !suiteRefused(lastErr) {
			return nil, lastErr
		}
	}
	return nil, lastErr
}

// checkChannel asks Get Channel Authentication Capabilities (IPMI v1.5
// framing, as ipmitool and FreeIPMI send it) whether the BMC speaks IPMI
// v2.0 at all, so a v1.5-only BMC gets a clear error instead of a timeout.
func (s *Session) checkChannel(ctx context.Context, priv types.PrivilegeLevel) error {
	req := &app.GetChannelAuthenticationCapabilitiesRequest{
		IPMIv20Extended:       true,
		ChannelNumber:         0x0e, // the channel this request arrives on
		MaximumPrivilegeLevel: priv,
	}
	var resp app.GetChannelAuthenticationCapabilitiesResponse
	if err := s.do(ctx, req, &resp, callOpts{}); err != nil {
		var ce *CompletionError
		if errors.As(err, &ce) {
			// A BMC that refuses the request with the v2.0 bit set is an
			// IPMI v1.5 BMC.
			return fmt.Errorf("%w: open session: %s does not offer IPMI v2.0 (RMCP+): %w", bmc.ErrUnsupported, s.addr, err)
		}
		return fmt.Errorf("open session: %w", err)
	}
	if !resp.IPMIv20ExtendedAvailable || !resp.SupportIPMIv20 {
		return fmt.Errorf("%w: %s does not offer IPMI v2.0 (RMCP+) on this channel", bmc.ErrUnsupported, s.addr)
	}
	return nil
}

// openWithFallback runs the handshake for one suite, lowering the requested
// role when the BMC refuses the role for this user (RAKP status 09h/0Ah):
// a user with only OPERATOR rights can still read and switch power.
func (s *Session) openWithFallback(ctx context.Context, suite Suite, cfg Config, priv types.PrivilegeLevel) error {
	var err error
	for p := priv; p >= types.PrivilegeLevelUser; p-- {
		err = s.handshake(ctx, suite, cfg, p)
		var se *StatusError
		if err == nil || !errors.As(err, &se) ||
			(se.Code != types.RmcpStatusCodeInvalidRole && se.Code != types.RmcpStatusCodeUnauthorizedRoleOfPriLevel) {
			return err
		}
	}
	return err
}

// handshake is Open Session and RAKP 1-4 for one suite and role.
func (s *Session) handshake(ctx context.Context, suite Suite, cfg Config, priv types.PrivilegeLevel) error {
	var rnd [20]byte
	if _, err := io.ReadFull(rand.Reader, rnd[:]); err != nil {
		return fmt.Errorf("open session: read crypto/rand: %w", err)
	}
	s.consoleID = binary.LittleEndian.Uint32(rnd[:4])
	if s.consoleID == 0 {
		s.consoleID = 1
	}
	if len(s.consoleIDs) < maxTracked {
		s.consoleIDs = append(s.consoleIDs, s.consoleID)
	}
	var consoleRand [16]byte
	copy(consoleRand[:], rnd[4:])

	// Open Session. The privilege asked for is explicit, never 0 ("highest
	// available"): ipmi_sim echoes the requested value back, and 0 echoed
	// back would mean nothing.
	auth, integ, crypt := rmcpplus.NewAlgorithmPayloads(suite.Auth, suite.Integrity, suite.Crypt)
	osReq := rmcpplus.OpenSessionRequest{
		RequestedMaximumPrivilegeLevel: priv,
		RemoteConsoleSessionID:         s.consoleID,
		AuthenticationPayload:          auth,
		IntegrityPayload:               integ,
		ConfidentialityPayload:         crypt,
	}
	var osResp rmcpplus.OpenSessionResponse
	err := s.setup(ctx, "open session",
		func(tag uint8) []byte { osReq.MessageTag = tag; return osReq.Pack() },
		types.PayloadTypeRmcpOpenSessionResponse,
		func(b []byte, t tags) (bool, error) {
			// Any of our tags: every Open Session copy the BMC saw created
			// a session, and the first answer is as good as the last.
			if len(b) < 2 || !t.ours(b[0]) {
				return false, nil
			}
			if shortError(b) {
				// ipmi_sim refuses a suite with just tag and status (2
				// bytes, no session ID); the tag is all there is to match.
				osResp = rmcpplus.OpenSessionResponse{MessageTag: b[0], RmcpStatusCode: types.RmcpStatusCode(b[1])}
				return true, nil
			}
			if err := osResp.Unpack(b); err != nil {
				return false, nil
			}
			if osResp.RemoteConsoleSessionID != s.consoleID {
				s.stray(b) // an earlier handshake's (a role fallback's) copy
				return false, nil
			}
			return true, nil
		})
	if err != nil {
		// Copies of the request may have reached the BMC and allocated
		// sessions whose answers were lost or are late; their IDs are
		// unknown, so nothing can be freed here. Late answers that do
		// arrive before the socket closes are freed (see stray).
		return err
	}
	if osResp.RmcpStatusCode != types.RmcpStatusCodeNoErrors {
		return &StatusError{Step: "open session", Code: osResp.RmcpStatusCode, Suite: suite.ID}
	}
	if types.AuthAlg(osResp.AuthAlg) != suite.Auth || types.IntegrityAlg(osResp.IntegrityAlg) != suite.Integrity ||
		types.CryptAlg(osResp.CryptAlg) != suite.Crypt {
		return fmt.Errorf("%w: open session: the bmc chose algorithms %s/%s/%s, not cipher suite %d's",
			bmc.ErrProtocol, types.AuthAlg(osResp.AuthAlg), types.IntegrityAlg(osResp.IntegrityAlg), types.CryptAlg(osResp.CryptAlg), suite.ID)
	}
	if osResp.ManagedSystemSessionID == 0 {
		return fmt.Errorf("%w: open session: the bmc assigned session id 0", bmc.ErrProtocol)
	}
	s.bmcID = osResp.ManagedSystemSessionID

	// RAKP 1 / 2. Each retransmission carries a new tag and only the answer
	// to the latest counts: a BMC picks a new random number for every RAKP 1
	// it sees, and RAKP 3 must prove knowledge of the one it kept.
	r1 := rmcpplus.RAKPMessage1{
		ManagedSystemSessionID:         s.bmcID,
		RemoteConsoleRandomNumber:      consoleRand,
		NameOnlyLookup:                 true,
		RequestedMaximumPrivilegeLevel: priv,
		UsernameLength:                 uint8(len(cfg.Username)),
		Username:                       []byte(cfg.Username),
	}
	role := r1.Role()
	r2 := rmcpplus.RAKPMessage2{AuthAlg: suite.Auth}
	err = s.setup(ctx, "rakp 1",
		func(tag uint8) []byte { r1.MessageTag = tag; return r1.Pack() },
		types.PayloadTypeRAKPMessage2,
		func(b []byte, t tags) (bool, error) {
			if len(b) < 2 || b[0] != t.latest {
				return false, nil
			}
			if shortError(b) {
				r2 = rmcpplus.RAKPMessage2{MessageTag: b[0], RmcpStatusCode: types.RmcpStatusCode(b[1])}
				return true, nil
			}
			if err := r2.Unpack(b); err != nil {
				return false, nil // a truncated answer: drop it
			}
			return r2.RemoteConsoleSessionID == s.consoleID, nil
		})
	if err != nil {
		// The session is half-open on the BMC: free its slot now.
		s.abandonRAKP(abandonStatus)
		return err
	}
	if r2.RmcpStatusCode != types.RmcpStatusCodeNoErrors {
		return &StatusError{Step: "rakp 2", Code: r2.RmcpStatusCode, Suite: suite.ID}
	}
	kuid := ipmicrypto.PadPassword20([]byte(cfg.Password.Reveal()))
	want, err := ipmicrypto.RAKP2AuthCode(suite.Auth, s.consoleID, s.bmcID, consoleRand[:],
		r2.ManagedSystemRandomNumber[:], r2.ManagedSystemGUID[:], role, cfg.Username, kuid)
	if err != nil {
		return fmt.Errorf("%w: rakp 2: %w", bmc.ErrProtocol, err)
	}
	if want, err = ipmicrypto.TruncateRAKP2AuthCode(suite.Auth, want); err != nil {
		return fmt.Errorf("%w: rakp 2: %w", bmc.ErrProtocol, err)
	}
	if subtle.ConstantTimeCompare(want, r2.KeyExchangeAuthenticationCode) != 1 {
		// Tell the BMC, so it frees the half-open session now rather than
		// holding a slot of its table for a minute.
		s.abandonRAKP(types.RmcpStatusCodeInvalidIntegrityCheckValue)
		return &AuthError{
			Msg:  fmt.Sprintf("the BMC's RAKP 2 proof does not match the password for user %q (wrong password, or a user the BMC does not know)", cfg.Username),
			hint: "check the password (and user name) in the host's credentials set; IPMI passwords are case-sensitive",
		}
	}

	k, err := deriveKeys(suite, consoleRand[:], r2.ManagedSystemRandomNumber[:], role, cfg.Username, kuid)
	if err != nil {
		return fmt.Errorf("%w: %w", bmc.ErrProtocol, err)
	}

	// RAKP 3 / 4.
	code, err := ipmicrypto.RAKP3AuthCode(suite.Auth, r2.ManagedSystemRandomNumber[:], s.consoleID, role, cfg.Username, kuid)
	if err != nil {
		return fmt.Errorf("%w: rakp 3: %w", bmc.ErrProtocol, err)
	}
	r3 := rmcpplus.RAKPMessage3{ManagedSystemSessionID: s.bmcID, KeyExchangeAuthenticationCode: code}
	r4 := rmcpplus.RAKPMessage4{AuthAlg: suite.Auth}
	err = s.setup(ctx, "rakp 3",
		func(tag uint8) []byte { r3.MessageTag = tag; return r3.Pack() },
		types.PayloadTypeRAKPMessage4,
		func(b []byte, t tags) (bool, error) {
			// Any of our tags: every copy of RAKP 3 carries the same proof
			// for the same keys, so the BMC's answer to an earlier copy is
			// as good as the latest's. Waiting for the latest only (as for
			// RAKP 2) threw a valid RAKP 4 away and let deadlines expire
			// on sessions the BMC had already activated.
			if len(b) < 2 || !t.ours(b[0]) {
				return false, nil
			}
			if shortError(b) {
				r4 = rmcpplus.RAKPMessage4{MessageTag: b[0], RmcpStatusCode: types.RmcpStatusCode(b[1])}
				return true, nil
			}
			if err := r4.Unpack(b); err != nil {
				return false, nil
			}
			return r4.MgmtConsoleSessionID == s.consoleID, nil
		})
	if err != nil {
		// The BMC may have activated the session on a copy of RAKP 3
		// whose RAKP 4 is late or lost: it would stay open for a minute.
		s.closeUnconfirmed(ctx, suite, k)
		return err
	}
	if r4.RmcpStatusCode != types.RmcpStatusCodeNoErrors {
		se := &StatusError{Step: "rakp 4", Code: r4.RmcpStatusCode, Suite: suite.ID}
		if se.Code == types.RmcpStatusCodeInvalidIntegrityCheckValue || se.Code == types.RmcpStatusCodeUnauthorizedName {
			return &AuthError{
				Msg:  fmt.Sprintf("the BMC rejected our RAKP 3 proof for user %q (status %#02x)", cfg.Username, uint8(se.Code)),
				hint: "check the password in the host's credentials set",
			}
		}
		return se
	}
	icv, err := ipmicrypto.RAKP4ICV(suite.Auth, consoleRand[:], s.bmcID, r2.ManagedSystemGUID[:], k.sik)
	if err != nil {
		return fmt.Errorf("%w: rakp 4: %w", bmc.ErrProtocol, err)
	}
	if subtle.ConstantTimeCompare(icv, r4.IntegrityCheckValue) != 1 {
		// The BMC thinks the session is open; our keys may be wrong, so
		// Close Session may not get through, and the abandon may.
		s.closeUnconfirmed(ctx, suite, k)
		return &AuthError{
			Msg:  "the BMC's RAKP 4 integrity check value does not match the session keys",
			hint: "the BMC may require a BMC key (Kg, two-key login), which rmm does not support",
		}
	}

	s.suite = suite
	s.k = k
	s.role = role
	s.maxPriv = priv
	s.active = true
	return nil
}

// tags identifies the message tags of one setup exchange: the latest
// transmission's, and the range of all of them.
type tags struct {
	first, latest uint8
}

// ours reports whether t was used by some transmission of the exchange.
func (t tags) ours(x uint8) bool { return x-t.first <= t.latest-t.first }

// shortError reports whether a setup answer is an error status without the
// fields that follow it. The spec's error answers are 8 bytes, but ipmi_sim
// sends only tag and status (2 bytes) when it refuses a cipher suite.
func shortError(b []byte) bool { return len(b) >= 2 && len(b) < 8 && b[1] != 0 }

// setup runs one session-setup exchange (Open Session or a RAKP message).
// pack builds the payload for a message tag; every transmission gets a new
// tag. match is given each payload of type want, with the exchange's tags,
// and reports whether it is the answer.
func (s *Session) setup(ctx context.Context, what string, pack func(tag uint8) []byte,
	want types.PayloadType, match func(b []byte, t tags) (bool, error)) error {
	var t tags
	sent := false
	build := func() ([]byte, error) {
		s.tag++
		t.latest = s.tag
		if !sent {
			t.first, sent = s.tag, true
		}
		pt := types.PayloadTypeRmcpOpenSessionRequest
		switch want {
		case types.PayloadTypeRAKPMessage2:
			pt = types.PayloadTypeRAKPMessage1
		case types.PayloadTypeRAKPMessage4:
			pt = types.PayloadTypeRAKPMessage3
		}
		s.wbuf = appendV20Presession(s.wbuf[:0], pt, pack(t.latest))
		return s.wbuf, nil
	}
	return s.exchange(ctx, what, callOpts{firstRTO: setupFirstRTO, maxRTO: setupMaxRTO}, build, func(b []byte) (verdict, error) {
		pt, payload, ok := s.accept(b)
		if !ok {
			return keepWaiting, nil
		}
		if pt != want {
			if pt == types.PayloadTypeRmcpOpenSessionResponse {
				s.stray(payload)
			}
			s.stats.Stale++
			return keepWaiting, nil
		}
		done, err := match(payload, t)
		if err != nil {
			return keepWaiting, err
		}
		if !done {
			s.stats.Stale++
			return keepWaiting, nil
		}
		return answered, nil
	})
}

// abandonStatus is the RAKP 3 status rmm sends when it gives up on a
// handshake that did not fail at authentication (a timeout, a cancel, a
// stray session): "insufficient resources", the console's side of it.
const abandonStatus = types.RmcpStatusCodeNoResToCreateSess

// maxTracked bounds the console IDs (one per handshake) and abandoned BMC
// session IDs a Session remembers: a handful per Open.
const maxTracked = 16

// abandonRAKP sends RAKP 3 with an error status once for the session being
// set up, which makes the BMC drop the half-open session at once (IPMI
// v2.0 §13.22) instead of holding a slot of its session table until it
// times out. Best effort, no retries.
func (s *Session) abandonRAKP(status types.RmcpStatusCode) {
	s.abandon(s.bmcID, status)
}

// abandon sends RAKP 3 with an error status for BMC session id, once and
// unanswered (the BMC's RAKP 4 is dropped as stale).
func (s *Session) abandon(id uint32, status types.RmcpStatusCode) {
	if id == 0 {
		return
	}
	if len(s.abandoned) < maxTracked {
		s.abandoned = append(s.abandoned, id)
	}
	s.tag++
	r3 := rmcpplus.RAKPMessage3{MessageTag: s.tag, RmcpStatusCode: status, ManagedSystemSessionID: id}
	// A buffer of its own: this runs inside exchanges whose packet is in
	// s.wbuf.
	pkt := appendV20Presession(make([]byte, 0, 64), types.PayloadTypeRAKPMessage3, r3.Pack())
	if _, err := s.conn.Write(pkt); err == nil {
		s.stats.Sent++
		s.stats.Abandoned++
	}
}

// stray looks at an Open Session Response that arrived when no Open
// Session exchange wanted it: the answer to a retransmitted copy of one of
// our requests (the BMC allocated a session for every copy it received),
// or to a role fallback's earlier handshake. Such a session would sit
// half-open in the BMC's table for a minute; stray abandons it.
func (s *Session) stray(payload []byte) {
	var r rmcpplus.OpenSessionResponse
	if len(payload) < 12 || payload[1] != 0 || r.Unpack(payload) != nil {
		return
	}
	id := r.ManagedSystemSessionID
	if id == 0 || id == s.bmcID || !slices.Contains(s.consoleIDs, r.RemoteConsoleSessionID) ||
		slices.Contains(s.abandoned, id) {
		return
	}
	s.abandon(id, abandonStatus)
}

// closeUnconfirmed ends a handshake that failed after RAKP 3 went out: the
// BMC may have activated the session (on any copy of RAKP 3) without its
// RAKP 4 reaching us. It sends Close Session inside the session with the
// keys just derived, under its own short deadline (the caller's context
// may be what ended the handshake), and when that is not answered, the
// RAKP 3 abandon, which frees the session if the BMC never activated it.
func (s *Session) closeUnconfirmed(ctx context.Context, suite Suite, k *keys) {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), closeBudget)
	defer cancel()
	s.suite, s.k, s.active = suite, k, true
	id := []byte{byte(s.bmcID), byte(s.bmcID >> 8), byte(s.bmcID >> 16), byte(s.bmcID >> 24)}
	_, err := s.call(cctx, types.CommandCloseSession, id, callOpts{})
	s.suite, s.k, s.active = Suite{}, nil, false
	s.in = window{}
	var ce *CompletionError
	if err != nil && !errors.As(err, &ce) {
		s.abandonRAKP(abandonStatus)
	}
}
