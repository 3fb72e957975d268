package sim

import (
	"crypto/tls"
	"fmt"
	"net/netip"
	"time"

	"github.com/rmm-project/rmm/sim/redfishsim"
)

// startRedfish starts a host's Redfish BMC over its machine: the same
// power, SEL and identity the IPMI side serves. The whole Redfish wiring is
// here, apart from the IPMI side's.
func startRedfish(s HostSpec, h *Host, addr netip.AddrPort, delay time.Duration, o options) (*redfishsim.Server, error) {
	vendor := s.Vendor
	if vendor == "" {
		vendor = "dmtf"
	}
	var cert *tls.Certificate
	if o.certDir != "" {
		c, err := certFor(o.certDir, addr)
		if err != nil {
			return nil, fmt.Errorf("redfish %s: %w", addr, err)
		}
		cert = &c
	}
	// A host with an IPMI side advertises that port for Serial-over-LAN,
	// whatever the captured tree says (Supermicro's says 623, which a
	// non-root simulator cannot bind).
	var ipmiPortNow uint16
	if h.IPMI != nil {
		ipmiPortNow = h.IPMI.Addr().Port()
	}
	return redfishsim.Start(redfishsim.Config{
		IPMIPort: ipmiPortNow,
		Addr:     addr,
		Vendor:   vendor,
		Username: s.Username,
		Password: h.bmcPassword,
		Machine:  h.Machine,
		Delay:    delay,
		Dead:     s.Has(Dead),
		Cert:     cert,
		Log:      o.redfishLog,
	})
}
