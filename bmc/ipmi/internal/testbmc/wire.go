package testbmc

import (
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bougou/go-ipmi/pkg/transport"
)

// wireConn is the BMC's socket with fault injection and capture: it can
// drop packets in either direction and records what arrived, so tests can
// check what the client put on the wire (IVs, sequence numbers).
type wireConn struct {
	transport.PacketConn
	udp             *net.UDPConn
	dropIn, dropOut func(n int) bool
	delayOut        func(n int) time.Duration
	blackhole       atomic.Bool
	mu              sync.Mutex
	nIn, nOut       int
	seen            [][]byte
	closed          bool
	timers          map[*time.Timer]struct{}
}

// ReadFrom captures every packet and drops those dropIn (or the black
// hole) selects.
func (c *wireConn) ReadFrom(buf []byte) (int, net.Addr, error) {
	for {
		n, addr, err := c.PacketConn.ReadFrom(buf)
		if err != nil {
			return n, addr, err
		}
		c.mu.Lock()
		c.nIn++
		k := c.nIn
		c.seen = append(c.seen, append([]byte(nil), buf[:n]...))
		c.mu.Unlock()
		if c.blackhole.Load() || (c.dropIn != nil && c.dropIn(k)) {
			continue
		}
		return n, addr, nil
	}
}

// WriteTo drops what dropOut (or the black hole) selects.
func (c *wireConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	c.mu.Lock()
	c.nOut++
	k := c.nOut
	c.mu.Unlock()
	if c.blackhole.Load() || (c.dropOut != nil && c.dropOut(k)) {
		return len(b), nil
	}
	if c.delayOut != nil {
		if d := c.delayOut(k); d > 0 {
			c.later(d, append([]byte(nil), b...), addr)
			return len(b), nil
		}
	}
	return c.PacketConn.WriteTo(b, addr)
}

// later sends b after d, on a timer (no goroutine waits meanwhile), unless
// the connection closes first.
func (c *wireConn) later(d time.Duration, b []byte, addr net.Addr) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	if c.timers == nil {
		c.timers = map[*time.Timer]struct{}{}
	}
	var t *time.Timer
	t = time.AfterFunc(d, func() {
		c.mu.Lock()
		_, live := c.timers[t]
		delete(c.timers, t)
		c.mu.Unlock()
		if live && !c.blackhole.Load() {
			_, _ = c.PacketConn.WriteTo(b, addr)
		}
	})
	c.timers[t] = struct{}{}
}

// Close stops delayed answers, then closes the socket.
func (c *wireConn) Close() error {
	c.mu.Lock()
	c.closed = true
	for t := range c.timers {
		t.Stop()
		delete(c.timers, t)
	}
	c.mu.Unlock()
	return c.PacketConn.Close()
}

// LocalAddr lets the server learn its port (it reports it in Activate
// Payload).
func (c *wireConn) LocalAddr() net.Addr { return c.udp.LocalAddr() }

func (c *wireConn) captured() [][]byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([][]byte(nil), c.seen...)
}
