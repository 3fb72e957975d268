package interop

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// solHub is the "null-modem cable" for every ipmi_sim of a farm: ipmi_sim's
// `sol "tcp:IP:SOLPORT"` makes the BMC connect out to IP:SOLPORT and treat
// that stream as the host's serial port. The hub listens there (the BMC
// side) and on IP:HOSTPORT (the host side: whatever connects there is the
// host's serial port, which is how chassis.sh prints boot banners). It
// replaces the recipe's solhub.py, in the test process.
//
// What the host prints goes to the BMC (and so to a SOL client) and to
// DIR/console.log; what a SOL user types goes to every host-side
// connection and to DIR/keys.log, or is echoed back (CR as CRLF) when no
// host side is attached, like a login prompt.
type solHub struct {
	mu     sync.Mutex
	lines  map[netip.Addr]*solLine
	lns    []net.Listener
	conns  map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup
}

// solLine is one host's serial line.
type solLine struct {
	addr      netip.Addr
	console   *os.File
	keys      *os.File
	connected chan struct{} // closed when ipmi_sim first connects

	mu    sync.Mutex
	bmc   net.Conn
	hosts map[net.Conn]struct{}
	once  sync.Once
}

// solWriteTimeout bounds every write, so a stuck peer never stalls the hub.
const solWriteTimeout = 2 * time.Second

func newSOLHub() *solHub {
	return &solHub{lines: map[netip.Addr]*solLine{}, conns: map[net.Conn]struct{}{}}
}

// add serves the line of the BMC at addr: ipmi_sim connects to
// addr:solPort, the host side is addr:hostPort, logs go to dir.
func (h *solHub) add(addr netip.Addr, solPort, hostPort uint16, dir string) error {
	console, err := os.OpenFile(filepath.Join(dir, "console.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	keys, err := os.OpenFile(filepath.Join(dir, "keys.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		console.Close()
		return err
	}
	l := &solLine{addr: addr, console: console, keys: keys, connected: make(chan struct{}), hosts: map[net.Conn]struct{}{}}
	h.mu.Lock()
	h.lines[addr] = l
	h.mu.Unlock()
	for _, side := range []struct {
		port uint16
		bmc  bool
	}{{solPort, true}, {hostPort, false}} {
		ln, err := net.ListenTCP("tcp", net.TCPAddrFromAddrPort(netip.AddrPortFrom(addr, side.port)))
		if err != nil {
			return fmt.Errorf("sol hub: %w", err)
		}
		h.mu.Lock()
		h.lns = append(h.lns, ln)
		h.mu.Unlock()
		h.wg.Add(1)
		go h.accept(ln, l, side.bmc)
	}
	return nil
}

func (h *solHub) accept(ln net.Listener, l *solLine, bmcSide bool) {
	defer h.wg.Done()
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		h.mu.Lock()
		if h.closed {
			h.mu.Unlock()
			c.Close()
			return
		}
		h.conns[c] = struct{}{}
		h.wg.Add(1)
		h.mu.Unlock()
		go h.serve(c, l, bmcSide)
	}
}

func (h *solHub) serve(c net.Conn, l *solLine, bmcSide bool) {
	defer h.wg.Done()
	defer func() {
		h.mu.Lock()
		delete(h.conns, c)
		h.mu.Unlock()
		c.Close()
	}()
	l.mu.Lock()
	if bmcSide {
		if l.bmc != nil { // ipmi_sim reconnected: the newest wins
			l.bmc.Close()
		}
		l.bmc = c
		l.once.Do(func() { close(l.connected) })
	} else {
		l.hosts[c] = struct{}{}
	}
	l.mu.Unlock()
	defer func() {
		l.mu.Lock()
		if l.bmc == c {
			l.bmc = nil
		}
		delete(l.hosts, c)
		l.mu.Unlock()
	}()
	buf := make([]byte, 4096)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			if bmcSide {
				l.typed(buf[:n])
			} else {
				l.print(buf[:n])
			}
		}
		if err != nil {
			return
		}
	}
}

// print is host output: to the BMC and console.log.
func (l *solLine) print(b []byte) {
	_, _ = l.console.Write(b)
	l.mu.Lock()
	c := l.bmc
	l.mu.Unlock()
	if c != nil {
		write(c, b)
	}
}

// typed is what a SOL user typed: to the host side, or echoed.
func (l *solLine) typed(b []byte) {
	_, _ = l.keys.Write(b)
	l.mu.Lock()
	var hosts []net.Conn
	for c := range l.hosts {
		hosts = append(hosts, c)
	}
	c := l.bmc
	l.mu.Unlock()
	for _, hc := range hosts {
		write(hc, b)
	}
	if len(hosts) == 0 && c != nil {
		write(c, []byte(strings.ReplaceAll(string(b), "\r", "\r\n")))
	}
}

func write(c net.Conn, b []byte) {
	_ = c.SetWriteDeadline(time.Now().Add(solWriteTimeout))
	_, _ = c.Write(b)
}

// line returns the line of addr, or nil.
func (h *solHub) line(addr netip.Addr) *solLine {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.lines[addr]
}

// close stops every listener and connection and waits for the goroutines.
func (h *solHub) close() error {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil
	}
	h.closed = true
	for _, ln := range h.lns {
		ln.Close()
	}
	for c := range h.conns {
		c.Close()
	}
	h.mu.Unlock()
	h.wg.Wait()
	var errs []error
	for _, l := range h.lines {
		errs = append(errs, l.console.Close(), l.keys.Close())
	}
	return errors.Join(errs...)
}
