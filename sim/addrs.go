package sim

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sync"
	"syscall"
)

// DefaultIPMIPort is 623 when this process may bind a UDP port below 1024
// (root, CAP_NET_BIND_SERVICE, or net.ipv4.ip_unprivileged_port_start <=
// 623), else 6230. It finds out by trying, once.
func DefaultIPMIPort() uint16 {
	if lowPorts() {
		return 623
	}
	return 6230
}

// DefaultRedfishPort is 443 when this process may bind ports below 1024,
// else 8443.
func DefaultRedfishPort() uint16 {
	if lowPorts() {
		return 443
	}
	return 8443
}

// lowPorts binds a privileged UDP port on a loopback address nothing else
// uses, and closes it at once. Only "permission denied" says no: any other
// failure (the port taken, say) means the permission was there.
var lowPorts = sync.OnceValue(func() bool {
	c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.255.255.254:623")))
	if err != nil {
		return !errors.Is(err, syscall.EACCES) && !errors.Is(err, syscall.EPERM)
	}
	_ = c.Close()
	return true
})

// Addrs returns n consecutive loopback addresses from base, carrying into
// the next octet and skipping host parts .0 and .255 (127.0.30.250, 9 ->
// 127.0.30.250 ... 127.0.30.254, 127.0.31.1 ... 127.0.31.4). It panics if
// base is not an IPv4 address in 127.0.0.0/8 or the range would leave it:
// that is a mistake in a test or benchmark, not a run-time condition.
func Addrs(base netip.Addr, n int) []netip.Addr {
	if !base.Is4() || base.As4()[0] != 127 {
		panic(fmt.Sprintf("sim.Addrs: base %s is not in 127.0.0.0/8", base))
	}
	b := base.As4()
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	out := make([]netip.Addr, 0, max(0, n))
	for len(out) < n {
		if v>>24 != 127 {
			panic(fmt.Sprintf("sim.Addrs: %d addresses from %s leave 127.0.0.0/8", n, base))
		}
		if last := byte(v); last != 0 && last != 255 {
			out = append(out, netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), last}))
		}
		v++
	}
	return out
}

// Generate returns n host specs named host0001, host0002, ... on Addrs(base,
// n), each a copy of tmpl (leave tmpl.Identity zero and each host's is
// derived from its name). For tests and benchmarks.
func Generate(base netip.Addr, n int, tmpl HostSpec) []HostSpec {
	addrs := Addrs(base, n)
	specs := make([]HostSpec, n)
	for i, a := range addrs {
		s := tmpl
		s.Name = fmt.Sprintf("host%04d", i+1)
		s.Addr = a
		s.Scenarios = slices.Clone(tmpl.Scenarios)
		specs[i] = s
	}
	return specs
}
