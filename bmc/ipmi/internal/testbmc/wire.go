package testbmc

import (
	"net"
	"sync"
	"sync/atomic"

	"github.com/bougou/go-ipmi/pkg/transport"
)

// wireConn is the BMC's socket with fault injection and capture: it can
// drop packets in either direction and records what arrived, so tests can
// check what the client put on the wire (IVs, sequence numbers).
type wireConn struct {
	transport.PacketConn
	udp             *net.UDPConn
	dropIn, dropOut func(n int) bool
	blackhole       atomic.Bool
	mu              sync.Mutex
	nIn, nOut       int
	seen            [][]byte
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
	return c.PacketConn.WriteTo(b, addr)
}

// LocalAddr lets the server learn its port (it reports it in Activate
// Payload).
func (c *wireConn) LocalAddr() net.Addr { return c.udp.LocalAddr() }

func (c *wireConn) captured() [][]byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([][]byte(nil), c.seen...)
}
