package sim

import (
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
	return redfishsim.Start(redfishsim.Config{
		Addr:     addr,
		Vendor:   vendor,
		Username: s.Username,
		Password: h.bmcPassword,
		Machine:  h.Machine,
		Delay:    delay,
		Dead:     s.Has(Dead),
		Log:      o.redfishLog,
	})
}
