package ipmisim

import (
	"encoding/binary"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bougou/go-ipmi/pkg/protocol"
)

// Faults are network-level misbehaviours, applied to the BMC's UDP traffic
// below go-ipmi's server, so the BMC's state machine is the real one and
// only the wire lies. Zero means healthy. SetFaults switches them at run
// time: a BMC can go dead, slow or flaky in the middle of a test.
type Faults struct {
	// Dead drops every packet: the socket stays bound (no ICMP port
	// unreachable, as from a BMC that hangs), nothing is answered, and
	// responses already on their way are dropped too.
	Dead bool
	// Delay holds every response back this long, handshake and commands
	// alike: a slow BMC is slow on every packet, so opening a session
	// costs four delays (channel auth, open session, RAKP 1/2, RAKP 3/4)
	// and every command one more. Clients that retransmit meanwhile get
	// their duplicates answered (late) too, as from a real slow BMC.
	Delay time.Duration
	// DropEvery drops every Nth packet received (1 = all of them).
	DropEvery int
	// TruncateEvery cuts every Nth response to half its length.
	TruncateEvery int
	// CorruptEvery flips one byte of every Nth response's payload, so
	// integrity checks (or the client's parser) fail.
	CorruptEvery int
	// GarbageEvery replaces every Nth response with random bytes of the
	// same length.
	GarbageEvery int
	// SessionTableFull answers every Open Session Request with status
	// 0x01 "insufficient resources", exactly as a BMC whose session table
	// is full does, whatever the real table holds. (For a table that
	// fills for real, start the BMC with a small Config.MaxSessions.)
	SessionTableFull bool
}

// SetFaults replaces the active faults.
func (s *BMC) SetFaults(f Faults) { s.conn.setFaults(f) }

// Faults returns the active faults.
func (s *BMC) Faults() Faults { return *s.conn.faults.Load() }

// SetDead is SetFaults with only Dead changed.
func (s *BMC) SetDead(dead bool) {
	f := s.Faults()
	f.Dead = dead
	s.SetFaults(f)
}

// packetConn is the transport.PacketConn go-ipmi's server reads and writes
// through: a UDP socket plus fault injection and the session sniffing that
// go-ipmi offers no hook for (see sessionBook).
type packetConn struct {
	c    *net.UDPConn
	addr netip.AddrPort
	s    *BMC

	faults   atomic.Pointer[Faults]
	received atomic.Uint64 // packets read, for DropEvery
	sent     atomic.Uint64 // responses written, for the *Every faults
	dropped  atomic.Uint64

	mu      sync.Mutex
	closed  bool
	wg      sync.WaitGroup
	delayed map[*time.Timer]struct{}
}

func newPacketConn(c *net.UDPConn, s *BMC) *packetConn {
	p := &packetConn{c: c, s: s, delayed: map[*time.Timer]struct{}{}}
	p.addr = c.LocalAddr().(*net.UDPAddr).AddrPort()
	p.faults.Store(&Faults{})
	return p
}

func (p *packetConn) setFaults(f Faults) { p.faults.Store(&f) }

// LocalAddr lets go-ipmi's server learn the port it serves SOL on.
func (p *packetConn) LocalAddr() net.Addr { return p.c.LocalAddr() }

// ReadFrom returns the next packet the BMC should see. Packets a fault
// swallows never reach go-ipmi's server.
func (p *packetConn) ReadFrom(buf []byte) (int, net.Addr, error) {
	for {
		n, from, err := p.c.ReadFromUDPAddrPort(buf)
		if err != nil {
			return 0, nil, err
		}
		nth := p.received.Add(1)
		f := p.faults.Load()
		if f.Dead || (f.DropEvery > 0 && nth%uint64(f.DropEvery) == 0) {
			p.dropped.Add(1)
			continue
		}
		addr := net.UDPAddrFromAddrPort(from)
		if f.SessionTableFull && p.refuseOpenSession(buf[:n], addr) {
			continue
		}
		p.s.sess.sniffInbound(buf[:n])
		return n, addr, nil
	}
}

// WriteTo sends one response, after the session bookkeeping has seen it
// and the faults have had their way with it.
func (p *packetConn) WriteTo(data []byte, addr net.Addr) (int, error) {
	p.s.sess.sniffOutbound(p.s, data, addr)
	f := p.faults.Load()
	if f.Dead {
		return len(data), nil
	}
	nth := p.sent.Add(1)
	out := data
	every := func(n int) bool { return n > 0 && nth%uint64(n) == 0 }
	switch {
	case every(f.GarbageEvery):
		out = make([]byte, len(data))
		for i := range out {
			out[i] = byte(rand.Uint32())
		}
	case every(f.CorruptEvery):
		out = append([]byte(nil), data...)
		if len(out) > 16 {
			out[16+int(nth%uint64(len(out)-16))] ^= 0xff
		} else if len(out) > 0 {
			out[len(out)-1] ^= 0xff
		}
	case every(f.TruncateEvery):
		out = data[:len(data)/2]
	}
	if f.Delay > 0 {
		p.later(f.Delay, append([]byte(nil), out...), addr)
		return len(data), nil
	}
	if _, err := p.c.WriteTo(out, addr); err != nil {
		return 0, err
	}
	return len(data), nil
}

// later sends b after d on a timer, so a slow response holds no goroutine
// (and no session lock) while it waits.
func (p *packetConn) later(d time.Duration, b []byte, addr net.Addr) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	p.wg.Add(1)
	var t *time.Timer
	t = time.AfterFunc(d, func() {
		defer p.wg.Done()
		p.mu.Lock()
		delete(p.delayed, t)
		closed := p.closed
		p.mu.Unlock()
		if closed || p.faults.Load().Dead {
			return
		}
		_, _ = p.c.WriteTo(b, addr)
	})
	p.delayed[t] = struct{}{}
}

// stopDelayed cancels responses still waiting and waits for any being sent.
func (p *packetConn) stopDelayed() {
	p.mu.Lock()
	p.closed = true
	for t := range p.delayed {
		if t.Stop() {
			p.wg.Done()
		}
		delete(p.delayed, t)
	}
	p.mu.Unlock()
	p.wg.Wait()
}

func (p *packetConn) Close() error { return p.c.Close() }

// refuseOpenSession answers an Open Session Request with "insufficient
// resources" (RMCP+ status 0x01) and reports whether pkt was one.
func (p *packetConn) refuseOpenSession(pkt []byte, addr net.Addr) bool {
	payloadType, payload, ok := rmcpPlusSessionless(pkt)
	if !ok || payloadType != payloadOpenSessionRequest || len(payload) < 8 {
		return false
	}
	resp := make([]byte, 8)
	resp[0] = payload[0] // message tag
	resp[1] = 0x01       // insufficient resources to create a session
	copy(resp[4:8], payload[4:8])
	_, _ = p.WriteTo(protocol.BuildRMCPPlusPacket(payloadOpenSessionResponse, 0, 0, 0, resp), addr)
	return true
}

// RMCP+ session-setup payload types (IPMI 2.0 table 13-16).
const (
	payloadOpenSessionRequest  = 0x10
	payloadOpenSessionResponse = 0x11
	payloadRAKP1               = 0x12
	payloadRAKP2               = 0x13
	payloadRAKP3               = 0x14
	payloadRAKP4               = 0x15
)

// rmcpPlusSessionless returns the payload type and payload of an RMCP+
// packet outside any session (session ID 0): the handshake.
func rmcpPlusSessionless(pkt []byte) (uint8, []byte, bool) {
	if len(pkt) < 16 || pkt[3]&0x1f != 0x07 || pkt[4] != 0x06 {
		return 0, nil, false
	}
	sessionID, _, payloadType, _, payload, ok := protocol.ParseRMCPPlusHeader(pkt)
	if !ok || sessionID != 0 {
		return 0, nil, false
	}
	return payloadType, payload, true
}

func le32(b []byte) uint32 { return binary.LittleEndian.Uint32(b) }
