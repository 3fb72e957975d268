package ipmi

import (
	"context"
	"fmt"
	"time"

	"github.com/bougou/go-ipmi/pkg/command/app"
	"github.com/rmm-project/rmm/bmc"
	"github.com/rmm-project/rmm/bmc/ipmi/rmcp"
)

// Identity reads Get System GUID (formatted as ipmitool prints it) and Get
// Device ID (firmware revision and manufacturer). A BMC without Get System
// GUID (completion code C1h) yields an identity without GUID rather than an
// error; the caller's Mismatch then reports that nothing could be compared.
func (p *Provider) Identity(ctx context.Context) (bmc.Identity, error) {
	s, err := p.session()
	if err != nil {
		return bmc.Identity{}, err
	}
	var id bmc.Identity
	var g app.GetSystemGUIDResponse
	switch err := s.Do(ctx, &app.GetSystemGUIDRequest{}, &g); {
	case err == nil:
		id.GUID = FormatGUID(g.GUID, time.Now())
	case rmcp.IsCompletion(err, 0xc1):
	default:
		return bmc.Identity{}, fmt.Errorf("identity: %w", err)
	}
	data, err := s.Raw(ctx, 0x06, 0x01, nil) // Get Device ID
	if err != nil {
		return bmc.Identity{}, fmt.Errorf("identity: %w", err)
	}
	if len(data) >= 9 {
		// ipmitool prints "%u.%02x": major in binary, minor in BCD.
		id.Firmware = fmt.Sprintf("%d.%02x", data[2]&0x7f, data[3])
		mfr := uint32(data[6]) | uint32(data[7])<<8 | uint32(data[8]&0x0f)<<16
		id.Vendor = vendorName(mfr)
	}
	return id, nil
}

// vendorName names the manufacturers whose BMCs rmm meets (numbers checked
// against the IANA registry); others print as their enterprise number. (ipmitool reads a 4 MB registry file for
// this on every run; a fleet tool should not.)
func vendorName(iana uint32) string {
	switch iana {
	case 2:
		return "IBM"
	case 11:
		return "Hewlett-Packard"
	case 343:
		return "Intel"
	case 674:
		return "Dell"
	case 2011:
		return "Huawei"
	case 4753: // OpenIPMI's ipmi_sim
		return "MontaVista"
	case 5771:
		return "Cisco"
	case 7244:
		return "Quanta"
	case 10368:
		return "Fujitsu"
	case 10876:
		return "Supermicro"
	case 15370:
		return "Giga-Byte"
	case 19046:
		return "Lenovo"
	case 20974:
		return "American Megatrends"
	case 37945:
		return "Inspur"
	case 47196:
		return "Hewlett Packard Enterprise"
	case 49622:
		return "ASRock Rack"
	case 49871:
		return "OpenBMC"
	}
	return fmt.Sprintf("IANA %d", iana)
}
