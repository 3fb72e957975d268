package interop

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Query is one DNS message the canary received.
type Query struct {
	// Proto is "udp" or "tcp".
	Proto string
	// Name and Type are the first question's, when the message parsed
	// ("" and 0 otherwise: it is counted all the same).
	Name string
	Type uint16
	From netip.AddrPort
}

// DNSCanary is a DNS server that answers every query NXDOMAIN and counts
// it. Pointed at by a resolver (resolv.conf), it proves whether a program
// asked DNS: any packet at all is a query, parsed or not.
type DNSCanary struct {
	udp     *net.UDPConn
	tcp     *net.TCPListener
	onQuery func(Query)
	n       atomic.Int64

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup
}

// StartDNSCanary listens on addr over UDP and TCP. onQuery, if set, is
// called for every message (from the serving goroutines, so it must be
// safe for concurrent use).
func StartDNSCanary(addr netip.AddrPort, onQuery func(Query)) (*DNSCanary, error) {
	u, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(addr))
	if err != nil {
		return nil, err
	}
	t, err := net.ListenTCP("tcp", net.TCPAddrFromAddrPort(addr))
	if err != nil {
		u.Close()
		return nil, err
	}
	c := &DNSCanary{udp: u, tcp: t, onQuery: onQuery, conns: map[net.Conn]struct{}{}}
	c.wg.Add(2)
	go c.serveUDP()
	go c.serveTCP()
	return c, nil
}

// Count is the number of DNS messages received so far.
func (c *DNSCanary) Count() int64 { return c.n.Load() }

// Close stops serving; every goroutine has ended when it returns.
func (c *DNSCanary) Close() error {
	c.mu.Lock()
	c.closed = true
	for cn := range c.conns {
		cn.Close()
	}
	c.mu.Unlock()
	err := errors.Join(c.udp.Close(), c.tcp.Close())
	c.wg.Wait()
	return err
}

func (c *DNSCanary) record(proto string, msg []byte, from netip.AddrPort) {
	c.n.Add(1)
	if c.onQuery == nil {
		return
	}
	name, typ, _ := parseQuestion(msg)
	c.onQuery(Query{Proto: proto, Name: name, Type: typ, From: from})
}

func (c *DNSCanary) serveUDP() {
	defer c.wg.Done()
	buf := make([]byte, 4096)
	for {
		n, from, err := c.udp.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		msg := buf[:n]
		c.record("udp", msg, from)
		if r := nxdomain(msg); r != nil {
			_, _ = c.udp.WriteToUDPAddrPort(r, from)
		}
	}
}

func (c *DNSCanary) serveTCP() {
	defer c.wg.Done()
	for {
		cn, err := c.tcp.Accept()
		if err != nil {
			return
		}
		c.mu.Lock()
		if c.closed {
			c.mu.Unlock()
			cn.Close()
			return
		}
		c.conns[cn] = struct{}{}
		c.wg.Add(1)
		c.mu.Unlock()
		go c.serveConn(cn)
	}
}

func (c *DNSCanary) serveConn(cn net.Conn) {
	defer c.wg.Done()
	defer func() {
		c.mu.Lock()
		delete(c.conns, cn)
		c.mu.Unlock()
		cn.Close()
	}()
	from, _ := netip.ParseAddrPort(cn.RemoteAddr().String())
	for range 100 {
		_ = cn.SetDeadline(time.Now().Add(5 * time.Second))
		var l [2]byte
		if _, err := io.ReadFull(cn, l[:]); err != nil {
			return
		}
		msg := make([]byte, binary.BigEndian.Uint16(l[:]))
		if _, err := io.ReadFull(cn, msg); err != nil {
			c.record("tcp", msg, from) // a torn query is still a query
			return
		}
		c.record("tcp", msg, from)
		if r := nxdomain(msg); r != nil {
			out := binary.BigEndian.AppendUint16(nil, uint16(len(r)))
			if _, err := cn.Write(append(out, r...)); err != nil {
				return
			}
		}
	}
}

// nxdomain turns a query into its NXDOMAIN answer: the same ID and
// question, QR and RA set, RCODE 3. It returns nil for something too
// short to be a DNS message.
func nxdomain(q []byte) []byte {
	if len(q) < 12 {
		return nil
	}
	end := 12
	if _, _, qend := parseQuestion(q); qend > 12 {
		end = qend
	}
	r := append([]byte(nil), q[:end]...)
	r[2] = 0x80 | q[2]&0x79 // QR, opcode, RD kept
	r[3] = 0x80 | 3         // RA, NXDOMAIN
	qd := uint16(0)
	if end > 12 {
		qd = 1
	}
	binary.BigEndian.PutUint16(r[4:], qd)
	binary.BigEndian.PutUint16(r[6:], 0)
	binary.BigEndian.PutUint16(r[8:], 0)
	binary.BigEndian.PutUint16(r[10:], 0)
	return r
}

// parseQuestion returns the first question's name and type and the offset
// just past it (0 when it does not parse).
func parseQuestion(m []byte) (string, uint16, int) {
	if len(m) < 12 || binary.BigEndian.Uint16(m[4:]) == 0 {
		return "", 0, 0
	}
	var labels []string
	i := 12
	for range 128 {
		if i >= len(m) {
			return "", 0, 0
		}
		l := int(m[i])
		i++
		if l == 0 {
			break
		}
		if l > 63 || i+l > len(m) {
			return "", 0, 0
		}
		labels = append(labels, string(m[i:i+l]))
		i += l
	}
	if i+4 > len(m) {
		return "", 0, 0
	}
	return strings.Join(labels, ".") + ".", binary.BigEndian.Uint16(m[i:]), i + 4
}
