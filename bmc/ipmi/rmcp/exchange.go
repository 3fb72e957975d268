package rmcp

import (
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"
	"time"

	"github.com/bougou/go-ipmi/pkg/types"
	"github.com/rmm-project/rmm/bmc"
)

// Retransmission schedule for commands in a session. The first retry comes
// after 250 ms (a LAN round trip to a BMC is a few ms; a busy one answers
// within 100 ms), each later one waits twice as long up to 2 s, and at most
// maxAttempts copies go out, all inside the caller's deadline. Without a
// deadline a request gets defaultBudget. A retransmitted read costs the BMC
// nothing; commands that act use DoOnce.
const (
	defaultFirstRTO = 250 * time.Millisecond
	maxRTO          = 2 * time.Second
	maxAttempts     = 8
	defaultBudget   = 10 * time.Second
)

// Retransmission schedule for session setup (Open Session, RAKP 1, RAKP 3):
// 1 s, then 2 s, then 4 s, as ipmitool and FreeIPMI wait about a second.
// Every Open Session Request a BMC receives allocates a session slot (16 to
// 64 on real BMCs) that a lost or ignored answer leaves half-open for the
// inactivity timeout, a minute; a retransmitted RAKP 1 makes the BMC pick a
// new random number, so only the answer to the latest copy counts. Against
// a BMC answering in 300 ms, the command schedule made each open send 5
// extra handshake packets, take 1.7 s instead of 1.2 s and leave one
// half-open slot behind; with this one it sends none. The cap is higher
// than the commands' because a BMC slower than the cap could never answer
// the latest RAKP 1 before the next copy replaced it.
const (
	setupFirstRTO = time.Second
	setupMaxRTO   = 4 * time.Second
)

// callOpts tune one exchange.
type callOpts struct {
	firstRTO time.Duration // 0 = defaultFirstRTO
	maxRTO   time.Duration // 0 = maxRTO
}

// longAgo is a read deadline in the past: it makes a blocked Read return.
var longAgo = time.Unix(1, 0)

// outcome of feeding one inbound packet to an exchange.
type verdict int

const (
	keepWaiting verdict = iota // not ours (stale, dropped, unrelated)
	answered                   // the answer we wait for
)

// exchange sends a packet built by build (called again for every
// retransmission, so each copy gets a fresh session sequence number and IV)
// and feeds every packet read to match until match reports an answer or an
// error, the retransmissions run out, or ctx ends. Cancelling ctx interrupts
// a blocked read at once.
func (s *Session) exchange(ctx context.Context, what string, o callOpts,
	build func() ([]byte, error), match func(b []byte) (verdict, error)) error {

	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(defaultBudget)
	}
	stop := context.AfterFunc(ctx, func() { _ = s.conn.SetReadDeadline(longAgo) })
	defer stop()

	rto := o.firstRTO
	if rto <= 0 {
		rto = defaultFirstRTO
	}
	start := time.Now()
	attempts := 0
	for attempts < maxAttempts {
		if err := ctx.Err(); err != nil {
			return s.ctxErr(ctx, what, attempts, start)
		}
		now := time.Now()
		if !now.Before(deadline) {
			break
		}
		pkt, err := build()
		if err != nil {
			return err
		}
		if _, err := s.conn.Write(pkt); err != nil {
			return s.netErr(what, err)
		}
		s.stats.Sent++
		if attempts > 0 {
			s.stats.Retransmits++
		}
		attempts++
		sentAt := now
		until := now.Add(rto)
		if until.After(deadline) {
			until = deadline
		}
		for {
			if err := s.conn.SetReadDeadline(until); err != nil {
				return s.netErr(what, err)
			}
			n, err := s.conn.Read(s.rbuf)
			if err != nil {
				if errors.Is(err, os.ErrDeadlineExceeded) {
					if ctx.Err() != nil {
						return s.ctxErr(ctx, what, attempts, start)
					}
					if time.Now().Before(until) {
						continue // woken early (a SOL writer); keep waiting
					}
					break // retransmit
				}
				return s.netErr(what, err)
			}
			s.stats.Received++
			v, err := match(s.rbuf[:n])
			if err != nil {
				return err
			}
			if v == answered {
				if attempts == 1 {
					s.rtt = time.Since(sentAt)
				}
				return nil
			}
		}
		rto *= 2
		if limit := cmp.Or(o.maxRTO, maxRTO); rto > limit {
			rto = limit
		}
	}
	if ctx.Err() != nil {
		return s.ctxErr(ctx, what, attempts, start)
	}
	return fmt.Errorf("%w: %s: no answer from %s after %d tries in %s",
		bmc.ErrTimeout, what, s.addr, attempts, time.Since(start).Round(time.Millisecond))
}

func (s *Session) ctxErr(ctx context.Context, what string, attempts int, start time.Time) error {
	err := ctx.Err()
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%w: %s: no answer from %s after %d tries in %s: %w",
			bmc.ErrTimeout, what, s.addr, attempts, time.Since(start).Round(time.Millisecond), err)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// netErr classifies a socket error. ECONNREFUSED on a connected UDP socket
// is the kernel passing on an ICMP port unreachable: nothing listens at the
// address, so waiting for more retransmissions is pointless.
func (s *Session) netErr(what string, err error) error {
	if errors.Is(err, syscall.ECONNREFUSED) {
		return fmt.Errorf("%w: %s: %s refused the packet (ICMP port unreachable: no IPMI service at that address): %w",
			bmc.ErrUnreachable, what, s.addr, err)
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return fmt.Errorf("%w: %s: %w", bmc.ErrTimeout, what, err)
	}
	return fmt.Errorf("%w: %s: %w", bmc.ErrUnreachable, what, err)
}

// nextRqSeq returns the next IPMI requester sequence number (1..63).
func (s *Session) nextRqSeq() uint8 {
	s.rqSeq++
	if s.rqSeq > maxRqSeq || s.rqSeq == 0 {
		s.rqSeq = 1
	}
	return s.rqSeq
}

// call runs one IPMI command on the session (or before it, for Get Channel
// Authentication Capabilities) and returns the response data, which
// aliases the read buffer until the next exchange.
func (s *Session) call(ctx context.Context, cmd types.Command, data []byte, o callOpts) ([]byte, error) {
	rqSeq := s.nextRqSeq()
	var msg [64]byte
	req := appendRequest(msg[:0], cmd.NetFn, cmd.ID, rqSeq, data)
	var out []byte
	var cc uint8
	build := func() ([]byte, error) {
		if !s.active {
			s.wbuf = appendV15Presession(s.wbuf[:0], req)
			return s.wbuf, nil
		}
		return s.seal(types.PayloadTypeIPMI, req)
	}
	match := func(b []byte) (verdict, error) {
		pt, payload, ok := s.accept(b)
		if !ok {
			return keepWaiting, nil
		}
		if pt == types.PayloadTypeSOL {
			if s.solInput != nil {
				s.solInput(payload)
			} else {
				s.stats.DroppedForeign++
			}
			return keepWaiting, nil
		}
		if pt != types.PayloadTypeIPMI {
			s.stats.DroppedForeign++
			return keepWaiting, nil
		}
		r, err := parseResponse(payload, !s.active || !s.suite.Authenticated())
		if err != nil {
			s.stats.DroppedMalformed++
			return keepWaiting, nil
		}
		if r.rqSeq != rqSeq || r.cmd != cmd.ID || r.netFn != cmd.NetFn+1 {
			s.stats.Stale++
			return keepWaiting, nil
		}
		out, cc = r.data, r.cc
		return answered, nil
	}
	if err := s.exchange(ctx, lowerName(cmd), o, build, match); err != nil {
		return nil, err
	}
	if cc != 0 {
		return nil, &CompletionError{Cmd: cmd, Code: cc}
	}
	return out, nil
}

// seal builds an in-session packet around plain: next session sequence
// number, payload encrypted and authenticated as the suite says. The packet
// lives in s.wbuf until the next seal.
func (s *Session) seal(pt types.PayloadType, plain []byte) ([]byte, error) {
	flags := uint8(0)
	if s.suite.Encrypted() {
		flags |= flagEncrypted
	}
	if s.suite.Authenticated() {
		flags |= flagAuthed
	}
	s.outSeq++
	if s.outSeq == 0 {
		s.outSeq = 1 // 2^32 packets later; 0 is reserved
	}
	b := appendRMCPHeader(s.wbuf[:0])
	b = append(b, authTypeRMCPP, uint8(pt)|flags)
	b = binary.LittleEndian.AppendUint32(b, s.bmcID)
	b = binary.LittleEndian.AppendUint32(b, s.outSeq)
	lenAt := len(b)
	b = append(b, 0, 0)
	start := len(b)
	if s.suite.Encrypted() {
		var err error
		if b, err = s.k.appendEncrypted(b, plain); err != nil {
			return nil, err
		}
	} else {
		b = append(b, plain...)
	}
	n := len(b) - start
	binary.LittleEndian.PutUint16(b[lenAt:], uint16(n))
	if s.suite.Authenticated() {
		pad := types.IntegrityPadLen(v20HeaderLen, n)
		for range pad {
			b = append(b, 0xff)
		}
		b = append(b, uint8(pad), nextHeaderIPMI)
		b = append(b, s.k.authCode(b[rmcpHeaderLen:])...)
	}
	s.wbuf = b
	return b, nil
}

// accept checks an inbound packet against the session state and returns
// its payload type and (decrypted) payload. ok is false for anything to
// drop, which it counts: malformed packets, other sessions' packets, bad
// AuthCodes, replays. Before the session is active only unauthenticated
// session-setup and pre-session packets pass; after, only this session's,
// authenticated when the suite has integrity.
func (s *Session) accept(b []byte) (types.PayloadType, []byte, bool) {
	macLen := 0
	if s.active && s.k != nil {
		macLen = s.k.macLen
	}
	p, err := parsePacket(b, macLen)
	if err != nil {
		s.stats.DroppedMalformed++
		return 0, nil, false
	}
	if p.class != classIPMI {
		s.stats.DroppedForeign++
		return 0, nil, false
	}
	if !s.active {
		if p.sessionID != 0 || p.authed || p.encrypted {
			s.stats.DroppedForeign++
			return 0, nil, false
		}
		return p.payloadType, p.payload, true
	}
	if p.sessionID == 0 && p.payloadType == types.PayloadTypeRmcpOpenSessionResponse && !p.authed && !p.encrypted {
		// A late answer to a retransmitted Open Session Request.
		s.stray(p.payload)
	}
	if p.authType != authTypeRMCPP || p.sessionID != s.consoleID {
		s.stats.DroppedForeign++
		return 0, nil, false
	}
	if s.suite.Authenticated() {
		if !p.authed || p.signed == nil || !s.k.verify(p.signed, p.authCode) {
			s.stats.DroppedIntegrity++
			return 0, nil, false
		}
	}
	if !s.in.check(p.seq) {
		s.stats.DroppedWindow++
		return 0, nil, false
	}
	payload := p.payload
	if p.encrypted {
		if !s.suite.Encrypted() {
			s.stats.DroppedMalformed++
			return 0, nil, false
		}
		if payload, err = s.k.decrypt(payload); err != nil {
			s.stats.DroppedMalformed++
			return 0, nil, false
		}
	}
	s.in.accept(p.seq)
	return p.payloadType, payload, true
}
