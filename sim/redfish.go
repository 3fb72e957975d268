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
	return redfishsim.Start(redfishsim.Config{
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
