package rmcp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/bougou/go-ipmi/pkg/types"
	"github.com/rmm-project/rmm/bmc"
)

// SOL payload packet fields (IPMI v2.0 §15.9, Table 15-2).
const (
	solHeaderLen = 4

	// console -> BMC operation bits
	solOpFlushOutbound = 0x01
	solOpBreak         = 0x10 // generate BREAK
	solNACK            = 0x40

	// BMC -> console status bits
	solStatusDeactivating = 0x10

	solMaxSeq = 0x0f
)

// SOL tuning. Keystrokes are retransmitted after 500 ms, doubling to 2 s,
// six times in all (about 9.5 s) before the session counts as dropped. A
// keepalive (Get Device ID, as ipmitool uses) goes out after 20 s without
// traffic, well inside the 30-60 s after which BMCs drop idle sessions; if
// it gets no answer within 6 s the session counts as dropped.
// At most 64 KiB of host output waits for Read; beyond that the BMC is not
// acknowledged and retransmits, which is the protocol's own flow control.
const (
	solFirstRTO        = 500 * time.Millisecond
	solMaxTries        = 6
	solKeepAlive       = 20 * time.Second
	solKeepAliveBudget = 6 * time.Second // 5 tries: 250 ms, 500 ms, 1 s, 2 s, 2 s
	solReadBufMax      = 64 << 10
	solNACKBackoff     = 100 * time.Millisecond
	solMaxNACKs        = 50
	defaultMaxChars    = 32
)

// SOLOptions tune OpenSOL.
type SOLOptions struct {
	// Instance is the payload instance; 0 means 1.
	Instance uint8
	// Force deactivates the payload when another session holds it, then
	// activates it for this one.
	Force bool
	// KeepAlive overrides solKeepAlive (tests).
	KeepAlive time.Duration
}

// BusyError says the SOL payload is active on another session, and who
// holds it when the BMC would tell.
type BusyError struct {
	Holder string // "user admin (id 2) from 10.0.0.5 port 48123, session 0x1a2b3c4d"; may be empty
}

// Error says the payload is taken, and by whom when known.
func (e *BusyError) Error() string {
	if e.Holder == "" {
		return "sol payload already active on another session"
	}
	return "sol payload already active on another session: " + e.Holder
}

// Unwrap makes BusyError an ErrBusy.
func (e *BusyError) Unwrap() error { return bmc.ErrBusy }

// Hint says how to take the console over.
func (e *BusyError) Hint() string {
	return "use --force to deactivate the other session's console and take it over"
}

// SOL is an active Serial-over-LAN payload on a session. Read returns what
// the host prints, Write sends keystrokes (returning once the BMC accepted
// them), SendBreak sends a serial break, Close deactivates the payload and
// hands the session back. Read, Write and SendBreak may be called from
// different goroutines; one goroutine of the SOL's own (the pump) is the
// only one that touches the session while the console is open.
type SOL struct {
	s        *Session
	instance uint8
	maxChars int           // keystrokes per packet: the BMC's inbound payload size
	probeFor time.Duration // how long to wait for an answer to the probe
	keep     time.Duration

	ctx    context.Context // ends the pump's blocking calls on Close
	cancel context.CancelFunc
	done   chan struct{} // closed when the pump has exited

	mu      sync.Mutex
	cond    *sync.Cond
	rbuf    []byte // host output not yet read
	rerr    error  // why Read stops once rbuf is empty
	writes  []*solWrite
	breaks  []chan error
	quit    bool
	exited  bool
	closing sync.Once
	cerr    error // Deactivate Payload's outcome, set by the pump
}

type solWrite struct {
	data []byte
	off  int // bytes the BMC accepted so far
	done chan error
}

// OpenSOL activates the SOL payload (IPMI v2.0 §24.1) with encryption and
// authentication as the session's suite allows, and starts the pump.
func (s *Session) OpenSOL(ctx context.Context, opts SOLOptions) (*SOL, error) {
	if err := s.lock(); err != nil {
		return nil, err
	}
	locked := true
	defer func() {
		if locked {
			s.mu.Unlock()
		}
	}()
	inst := opts.Instance
	if inst == 0 {
		inst = 1
	}
	if err := s.ensurePrivilege(ctx, types.PrivilegeLevelAdministrator); err != nil {
		return nil, fmt.Errorf("activate sol: %w", err)
	}
	resp, err := s.activatePayload(ctx, inst)
	if IsCompletion(err, 0x80) {
		if !opts.Force {
			return nil, fmt.Errorf("activate sol: %w", &BusyError{Holder: s.solHolder(ctx, inst)})
		}
		if derr := s.deactivatePayload(ctx, inst); derr != nil && !IsCompletion(derr, 0x80) {
			return nil, fmt.Errorf("force: deactivate the other session's sol payload: %w", derr)
		}
		resp, err = s.activatePayload(ctx, inst)
	}
	if err != nil {
		return nil, fmt.Errorf("activate sol: %w", err)
	}
	if len(resp) < 12 {
		return nil, fmt.Errorf("%w: activate payload: %d-byte answer", bmc.ErrProtocol, len(resp))
	}
	// The payload may be served on another UDP port (Table 24-2); rmm
	// keeps one socket per session, so it supports only the session's.
	if port := uint16(resp[8]) | uint16(resp[9])<<8; port != 0 && port != s.addr.Port() {
		_ = s.deactivatePayload(ctx, inst)
		return nil, fmt.Errorf("%w: the bmc serves sol on udp port %d, not the session's port %d", bmc.ErrUnsupported, port, s.addr.Port())
	}
	// Inbound payload size: how many characters the BMC takes per packet
	// (ipmi_sim: 32, the size of its buffer). Never more than 255, the most
	// an accepted-character count can acknowledge.
	maxChars := int(uint16(resp[4]) | uint16(resp[5])<<8)
	if maxChars <= 0 {
		maxChars = defaultMaxChars
	}
	maxChars = min(maxChars, 255)

	probe := 4 * s.rtt
	probe = min(max(probe, 200*time.Millisecond), time.Second)
	keep := opts.KeepAlive
	if keep <= 0 {
		keep = solKeepAlive
	}
	pctx, cancel := context.WithCancel(context.Background())
	c := &SOL{
		s: s, instance: inst, maxChars: maxChars, probeFor: probe, keep: keep,
		ctx: pctx, cancel: cancel, done: make(chan struct{}),
	}
	c.cond = sync.NewCond(&c.mu)
	s.sol = c
	s.solInput = nil // set by the pump
	locked = false
	s.mu.Unlock()
	go c.run()
	return c, nil
}

// activatePayload sends Activate Payload for SOL and returns its answer.
func (s *Session) activatePayload(ctx context.Context, inst uint8) ([]byte, error) {
	aux := uint8(0x06) // serial alerts deferred while SOL is active, like ipmitool
	if s.suite.Authenticated() {
		aux |= 0x40
	}
	if s.suite.Encrypted() {
		aux |= 0x80
	}
	data, err := s.call(ctx, types.CommandActivatePayload, []byte{uint8(types.PayloadTypeSOL), inst, aux, 0, 0, 0}, callOpts{})
	if err != nil {
		return nil, err
	}
	return append([]byte(nil), data...), nil
}

func (s *Session) deactivatePayload(ctx context.Context, inst uint8) error {
	_, err := s.call(ctx, types.CommandDeactivatePayload, []byte{uint8(types.PayloadTypeSOL), inst, 0, 0, 0, 0}, callOpts{})
	return err
}

// solHolder finds out, best effort, which session holds the payload:
// Get Payload Instance Info for its session ID, Get Session Info for user
// and address, Get User Name for the name. Any failure just shortens the
// description; the whole search is bounded to 1.5 s.
func (s *Session) solHolder(ctx context.Context, inst uint8) string {
	ctx, cancel := context.WithTimeout(ctx, 1500*time.Millisecond)
	defer cancel()
	data, err := s.call(ctx, types.CommandGetPayloadActivationStatus, []byte{uint8(types.PayloadTypeSOL)}, callOpts{})
	if err == nil && len(data) >= 2 && data[1]&(1<<(inst-1)) == 0 && inst <= 8 {
		return "" // the BMC says the instance is free again
	}
	data, err = s.call(ctx, types.CommandGetPayloadInstanceInfo, []byte{uint8(types.PayloadTypeSOL), inst}, callOpts{})
	if err != nil || len(data) < 4 {
		return ""
	}
	id := uint32(data[0]) | uint32(data[1])<<8 | uint32(data[2])<<16 | uint32(data[3])<<24
	desc := fmt.Sprintf("session %#08x", id)
	data, err = s.call(ctx, types.CommandGetSessionInfo, []byte{0xff, byte(id), byte(id >> 8), byte(id >> 16), byte(id >> 24)}, callOpts{})
	if err != nil || len(data) < 6 {
		return desc
	}
	uid := data[3] & 0x3f
	who := fmt.Sprintf("user id %d", uid)
	if len(data) >= 18 && data[5]&0xf0 != 0xf0 {
		who += fmt.Sprintf(" from %d.%d.%d.%d port %d", data[6], data[7], data[8], data[9], uint16(data[16])|uint16(data[17])<<8)
	}
	if name, err := s.call(ctx, types.CommandGetUsername, []byte{uid}, callOpts{}); err == nil {
		n := 0
		for n < len(name) && name[n] != 0 {
			n++
		}
		if n > 0 {
			who = fmt.Sprintf("user %q (id %d)%s", name[:n], uid, who[len(fmt.Sprintf("user id %d", uid)):])
		}
	}
	return who + ", " + desc
}

// Read returns host output. It blocks until some is available, the console
// is closed (io.EOF) or the session dropped (an error wrapping
// bmc.ErrTimeout or bmc.ErrUnreachable).
func (c *SOL) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for len(c.rbuf) == 0 && c.rerr == nil {
		c.cond.Wait()
	}
	if len(c.rbuf) > 0 {
		n := copy(p, c.rbuf)
		c.rbuf = c.rbuf[n:]
		if len(c.rbuf) == 0 {
			c.rbuf = c.rbuf[:0:0] // release the backing array
		}
		return n, nil
	}
	return 0, c.rerr
}

// Write sends keystrokes and returns once the BMC has accepted all of them
// or the console failed.
func (c *SOL) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	w := &solWrite{data: p, done: make(chan error, 1)}
	c.mu.Lock()
	if c.exited || c.quit {
		err := c.stopErr()
		c.mu.Unlock()
		return 0, err
	}
	c.writes = append(c.writes, w)
	c.mu.Unlock()
	c.wake()
	err := <-w.done // the pump answers every write it was given
	return w.off, err
}

// SendBreak sends a serial break (the "generate break" operation bit).
func (c *SOL) SendBreak(ctx context.Context) error {
	done := make(chan error, 1)
	c.mu.Lock()
	if c.exited || c.quit {
		err := c.stopErr()
		c.mu.Unlock()
		return err
	}
	c.breaks = append(c.breaks, done)
	c.mu.Unlock()
	c.wake()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("send break: %w", ctx.Err())
	}
}

// Close deactivates the payload (best effort, 500 ms) and hands the session
// back to its owner; it does not close the session. It is idempotent.
func (c *SOL) Close(ctx context.Context) error {
	c.closing.Do(func() {
		c.mu.Lock()
		c.quit = true
		c.mu.Unlock()
		c.cancel() // interrupts a blocking keepalive at once
		c.wake()
		<-c.done
	})
	_ = ctx // the pump bounds its own deactivation; ctx may already be done
	return c.cerr
}

// stopErr is what Write and SendBreak return once the console stopped.
// c.mu must be held.
func (c *SOL) stopErr() error {
	if c.rerr != nil && !errors.Is(c.rerr, io.EOF) {
		return c.rerr
	}
	return fmt.Errorf("%w: sol console is closed", bmc.ErrProtocol)
}

// wake interrupts the pump's blocked read so it looks at new work.
func (c *SOL) wake() { _ = c.s.conn.SetReadDeadline(longAgo) }
