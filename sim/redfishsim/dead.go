package redfishsim

import (
	"net"
	"sync"
)

// A dead BMC accepts TCP connections (its kernel still does) and then says
// nothing, not even the TLS handshake; connections open when it died go
// silent too. The switch sits under TLS, between the listener and the
// HTTP server: while it is off, every read and write of every connection
// waits, so requests and answers in flight stay where they are, as on a
// hung BMC. Turned back on, they carry on (most clients will have given
// up). Close releases every waiter.

// deadSwitch is the server's dead-or-alive state.
type deadSwitch struct {
	mu      sync.Mutex
	dead    bool
	revived chan struct{} // closed when the BMC comes back
}

// set switches the BMC dead or alive.
func (d *deadSwitch) set(dead bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if dead == d.dead {
		return
	}
	d.dead = dead
	if dead {
		d.revived = make(chan struct{})
	} else {
		close(d.revived)
	}
}

// isDead reports the state.
func (d *deadSwitch) isDead() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.dead
}

// waitAlive returns true at once when the BMC is alive, else when it
// comes back; false when stop (the connection's or the server's close)
// comes first.
func (d *deadSwitch) waitAlive(stop1, stop2 <-chan struct{}) bool {
	d.mu.Lock()
	if !d.dead {
		d.mu.Unlock()
		return true
	}
	ch := d.revived
	d.mu.Unlock()
	select {
	case <-ch:
		return true
	case <-stop1:
	case <-stop2:
	}
	return false
}

// switchListener hands out connections that obey the switch.
type switchListener struct {
	net.Listener
	s *Server
}

func (l switchListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &switchConn{Conn: c, s: l.s, closed: make(chan struct{})}, nil
}

// switchConn is one connection under the switch.
type switchConn struct {
	net.Conn
	s      *Server
	closed chan struct{}
	once   sync.Once
}

// Read waits while the BMC is dead, before reading and again before
// handing over what arrived meanwhile.
func (c *switchConn) Read(p []byte) (int, error) {
	if !c.s.dead.waitAlive(c.closed, c.s.done) {
		return 0, net.ErrClosed
	}
	n, err := c.Conn.Read(p)
	if n > 0 && !c.s.dead.waitAlive(c.closed, c.s.done) {
		return 0, net.ErrClosed
	}
	return n, err
}

// Write waits while the BMC is dead.
func (c *switchConn) Write(p []byte) (int, error) {
	if !c.s.dead.waitAlive(c.closed, c.s.done) {
		return 0, net.ErrClosed
	}
	return c.Conn.Write(p)
}

// NetConn is the TCP connection underneath (the reset fault sets its
// linger).
func (c *switchConn) NetConn() net.Conn { return c.Conn }

// Close releases the connection's waiters and closes it.
func (c *switchConn) Close() error {
	c.once.Do(func() { close(c.closed) })
	return c.Conn.Close()
}

// SetDead kills the BMC or brings it back, at run time: dead, it accepts
// TCP connections and answers nothing on new or existing ones, not even
// the TLS handshake (Config.Dead starts it so).
func (s *Server) SetDead(dead bool) {
	s.dead.set(dead)
	if dead {
		s.logf("dead")
	} else {
		s.logf("alive")
	}
}

// Dead reports whether the BMC is dead.
func (s *Server) Dead() bool { return s.dead.isDead() }
