package cli

import (
	"github.com/rmm-project/rmm/bmc"
	"github.com/rmm-project/rmm/bmc/ipmi"
	"github.com/rmm-project/rmm/bmc/redfish"
)

// DefaultProviders wires rmm's protocol implementations: the native IPMI
// provider (its own RMCP+ session layer), the Redfish provider on gofish,
// and bmclib's ipmitool provider as a last resort when ipmitool is
// installed.
func DefaultProviders() map[bmc.Protocol]bmc.ProviderFunc {
	m := map[bmc.Protocol]bmc.ProviderFunc{
		bmc.ProtocolIPMI:    ipmi.New,
		bmc.ProtocolRedfish: redfish.New,
	}
	if p := bmc.IPMItoolProvider(); p != nil {
		m[bmc.ProtocolIPMItool] = p
	}
	return m
}
