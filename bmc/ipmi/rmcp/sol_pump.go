package rmcp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/bougou/go-ipmi/pkg/types"
	"github.com/rmm-project/rmm/bmc"
)

// The kinds of outbound SOL packet the pump waits on.
const (
	outProbe = iota
	outBreak
	outData
)

// outPkt is the one SOL packet in flight (the protocol allows one
// unacknowledged packet per direction).
type outPkt struct {
	kind     int
	seq      uint8
	ctrl     uint8
	data     []byte // a copy of the keystrokes it carries
	deadline time.Time
	rto      time.Duration
	tries    int
	brk      chan error // outBreak: whom to tell
}

// pump is the state of the goroutine that owns the session while a console
// is open. Only that goroutine touches it, always with s.mu held.
type pump struct {
	c *SOL
	s *Session

	seq       uint8 // last SOL sequence number used (1..15)
	probed    bool
	out       *outPkt
	cur       *solWrite // the write being sent
	nacks     int       // consecutive answers that accepted nothing
	holdUntil time.Time // after such an answer, wait before sending more

	inSeq   uint8 // last host-output packet seen
	inCount int   // how many of its characters we accepted

	lastSent time.Time
	fatal    error
	byBMC    bool // the BMC deactivated the payload itself
	tmp      [solHeaderLen + 255]byte
}

// The first keystroke packet of a session can vanish on ipmi_sim: it never
// resets its "last acknowledged packet" between sessions and drops (while
// acknowledging) any packet whose sequence number equals it, so a console
// that always starts at 1, as ipmitool does, loses the first keystrokes
// whenever the previous console's last packet was 1 too.
//
// rmm therefore opens with a probe: an empty packet with sequence number 1.
// ipmi_sim acknowledges an empty packet only when it takes it for that
// duplicate, so an acknowledgement means "1 is stale" and the keystrokes
// start at 2; silence (for 4 round trips, 200 ms to 1 s) means 1 is safe
// and they start at 1. BMCs that acknowledge every packet (go-ipmi's) answer
// the probe and get 2, which they have not seen either. Either way the
// first real packet's number differs from whatever the BMC remembers.
const probeSeq = 1

func nextSeq(q uint8) uint8 {
	if q >= solMaxSeq {
		return 1
	}
	return q + 1
}

func prevSeq(q uint8) uint8 {
	if q <= 1 {
		return solMaxSeq
	}
	return q - 1
}

// run is the pump goroutine: it owns the session until Close or a fatal
// error, then deactivates the payload and releases the session.
func (c *SOL) run() {
	s := c.s
	p := &pump{c: c, s: s, lastSent: time.Now()}
	s.mu.Lock()
	s.solInput = p.onPayload
	s.mu.Unlock()

	err := p.loop()

	s.mu.Lock()
	s.solInput = nil
	var derr error
	if !p.byBMC {
		dctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		derr = s.deactivatePayload(dctx, c.instance)
		cancel()
		if IsCompletion(derr, 0x80) { // already deactivated
			derr = nil
		}
	}
	s.sol = nil
	s.mu.Unlock()

	c.mu.Lock()
	c.exited = true
	if err == nil {
		c.rerr = io.EOF
		if derr != nil {
			c.cerr = fmt.Errorf("deactivate sol: %w", derr)
		}
		err = fmt.Errorf("%w: sol console is closed", bmc.ErrProtocol)
	} else {
		c.rerr = err
	}
	if p.cur != nil {
		p.cur.done <- err
	}
	for _, w := range c.writes {
		w.done <- err
	}
	c.writes = nil
	if p.out != nil && p.out.brk != nil {
		p.out.brk <- err
	}
	for _, b := range c.breaks {
		b <- err
	}
	c.breaks = nil
	c.cond.Broadcast()
	c.mu.Unlock()
	close(c.done)
}

// loop runs until Close (nil) or a fatal error.
func (p *pump) loop() error {
	c, s := p.c, p.s
	for {
		s.mu.Lock()
		if c.quitting() {
			s.mu.Unlock()
			return nil
		}
		p.tick(time.Now())
		if p.fatal != nil {
			s.mu.Unlock()
			return p.fatal
		}
		wakeAt := p.nextWake()
		s.mu.Unlock()

		if err := s.conn.SetReadDeadline(wakeAt); err != nil {
			return s.netErr("sol", err)
		}
		// Work that arrived before the deadline was set would not wake the
		// read below; look for it now (see SOL.wake for the other half).
		if c.quitting() || (p.out == nil && c.hasWork()) {
			continue
		}
		n, err := s.conn.Read(s.rbuf)
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				continue
			}
			return s.netErr("sol", err)
		}
		s.mu.Lock()
		s.stats.Received++
		if pt, payload, ok := s.accept(s.rbuf[:n]); ok {
			if pt == types.PayloadTypeSOL {
				p.onPayload(payload)
			} else {
				s.stats.Stale++
			}
		}
		s.mu.Unlock()
	}
}

func (c *SOL) quitting() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.quit
}

func (c *SOL) hasWork() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.writes) > 0 || len(c.breaks) > 0
}

// tick handles expired timers and starts the next packet when none is in
// flight.
func (p *pump) tick(now time.Time) {
	if o := p.out; o != nil && !now.Before(o.deadline) {
		switch o.kind {
		case outProbe:
			p.seq = prevSeq(o.seq) // silence: the probe's number is safe
			p.out = nil
		case outBreak:
			// ipmi_sim does not acknowledge an empty packet; the break
			// bit was acted on when it arrived.
			o.brk <- nil
			p.out = nil
		case outData:
			if o.tries >= solMaxTries {
				p.fatal = fmt.Errorf("%w: sol: %s did not acknowledge keystrokes after %d tries; the session is gone",
					bmc.ErrTimeout, p.s.addr, o.tries)
				return
			}
			o.rto = min(2*o.rto, maxRTO)
			p.transmit(o, now)
		}
	}
	if now.Sub(p.lastSent) >= p.c.keep {
		p.keepalive()
		if p.fatal != nil {
			return
		}
		now = time.Now()
	}
	if p.out == nil {
		p.startNext(now)
	}
}

// keepalive sends Get Device ID, which every BMC answers at any privilege.
// SOL packets arriving meanwhile still reach onPayload (solInput).
func (p *pump) keepalive() {
	ctx, cancel := context.WithTimeout(p.c.ctx, solKeepAliveBudget)
	defer cancel()
	_, err := p.s.call(ctx, types.CommandGetDeviceID, nil, callOpts{})
	p.lastSent = time.Now()
	if err != nil && p.c.ctx.Err() == nil {
		p.fatal = fmt.Errorf("sol keepalive: %w", err)
	}
}

// startNext puts the next packet on the wire: the probe first, then
// breaks, then keystrokes, at most maxChars per packet.
func (p *pump) startNext(now time.Time) {
	if now.Before(p.holdUntil) {
		return
	}
	c := p.c
	if !p.probed {
		p.probed = true
		p.transmit(&outPkt{kind: outProbe, seq: probeSeq, rto: c.probeFor}, now)
		return
	}
	c.mu.Lock()
	var brk chan error
	if len(c.breaks) > 0 {
		brk = c.breaks[0]
		c.breaks = c.breaks[1:]
	} else if p.cur == nil && len(c.writes) > 0 {
		p.cur = c.writes[0]
		c.writes = c.writes[1:]
	}
	c.mu.Unlock()
	if brk != nil {
		p.seq = nextSeq(p.seq)
		p.transmit(&outPkt{kind: outBreak, seq: p.seq, ctrl: solOpBreak, rto: c.probeFor, brk: brk}, now)
		return
	}
	if w := p.cur; w != nil {
		end := min(w.off+c.maxChars, len(w.data))
		p.seq = nextSeq(p.seq)
		p.transmit(&outPkt{
			kind: outData, seq: p.seq,
			data: append([]byte(nil), w.data[w.off:end]...),
			rto:  solFirstRTO,
		}, now)
	}
}

// transmit (re)sends o and arms its timer.
func (p *pump) transmit(o *outPkt, now time.Time) {
	b := append(p.tmp[:0], o.seq, 0, 0, o.ctrl)
	b = append(b, o.data...)
	p.send(b)
	o.tries++
	o.deadline = now.Add(o.rto)
	p.out = o
}

// send seals and writes one SOL payload packet.
func (p *pump) send(payload []byte) {
	s := p.s
	pkt, err := s.seal(types.PayloadTypeSOL, payload)
	if err == nil {
		_, err = s.conn.Write(pkt)
	}
	if err != nil {
		if p.fatal == nil {
			p.fatal = s.netErr("sol", err)
		}
		return
	}
	s.stats.Sent++
	p.lastSent = time.Now()
}

// nextWake is when the pump must look up from the socket.
func (p *pump) nextWake() time.Time {
	t := p.lastSent.Add(p.c.keep)
	if p.out != nil && p.out.deadline.Before(t) {
		t = p.out.deadline
	}
	if p.out == nil && !p.holdUntil.IsZero() && p.holdUntil.Before(t) {
		t = p.holdUntil
	}
	return t
}

// onPayload handles one SOL payload from the BMC: the acknowledgement it
// may carry for our packet, the host output it may carry, its status.
func (p *pump) onPayload(b []byte) {
	if len(b) < solHeaderLen {
		p.s.stats.DroppedMalformed++
		return
	}
	seq, ack, count, status := b[0]&0x0f, b[1]&0x0f, b[2], b[3]
	if p.out != nil && ack != 0 && ack == p.out.seq {
		p.acked(int(count), status&solNACK != 0)
	}
	if seq != 0 {
		p.received(seq, b[solHeaderLen:])
	}
	if status&solStatusDeactivating != 0 && p.fatal == nil {
		p.byBMC = true
		p.fatal = fmt.Errorf("%w: the bmc deactivated the sol payload (another session may have taken the console over)", bmc.ErrBusy)
	}
}

// acked handles the BMC's answer to the packet in flight.
func (p *pump) acked(count int, nack bool) {
	o := p.out
	p.out = nil
	switch o.kind {
	case outProbe:
		p.seq = o.seq // the BMC remembered this number: start after it
		return
	case outBreak:
		o.brk <- nil
		return
	}
	w := p.cur
	n := min(count, len(o.data))
	w.off += n
	if n == 0 {
		// Nothing accepted: the BMC's buffer is full. Send again after a
		// pause that grows with each refusal, a bounded number of times.
		p.nacks++
		if p.nacks > solMaxNACKs {
			p.fatal = fmt.Errorf("%w: sol: the bmc accepted no keystrokes %d times in a row", bmc.ErrBusy, p.nacks)
			return
		}
		p.holdUntil = time.Now().Add(min(time.Duration(p.nacks)*solNACKBackoff, time.Second))
	} else {
		// Some or all accepted (a NACK with a count is a partial accept):
		// the rest goes at once, as a new packet.
		p.nacks = 0
		p.holdUntil = time.Time{}
	}
	if w.off >= len(w.data) {
		w.done <- nil
		p.cur = nil
	}
}

// received takes host output and acknowledges it. A retransmission (same
// sequence number) delivers only characters beyond those already taken:
// ipmi_sim's resend can carry more output than the first copy. When the
// read buffer is full nothing is acknowledged, and the BMC sends again.
func (p *pump) received(seq uint8, data []byte) {
	var fresh []byte
	if seq == p.inSeq {
		if len(data) > p.inCount {
			fresh = data[p.inCount:]
		}
	} else {
		p.inSeq, p.inCount = seq, 0
		fresh = data
	}
	p.inCount += p.c.deliver(fresh)
	if p.inCount == 0 && len(data) > 0 {
		return
	}
	p.send(append(p.tmp[:0], 0, p.inSeq, uint8(min(p.inCount, 255)), 0))
}

// deliver appends host output to the read buffer, up to its limit, and
// returns how much it took.
func (c *SOL) deliver(b []byte) int {
	if len(b) == 0 {
		return 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	n := min(len(b), solReadBufMax-len(c.rbuf))
	if n > 0 {
		c.rbuf = append(c.rbuf, b[:n]...)
		c.cond.Broadcast()
	}
	return n
}
