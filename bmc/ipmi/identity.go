package ipmi

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/bougou/go-ipmi/pkg/command/app"
	"github.com/rmm-project/rmm/bmc"
	"github.com/rmm-project/rmm/bmc/ipmi/rmcp"
)

// Identity reads Get System GUID, Get Device ID and the FRU inventory of
// device 0, and fills in:
//
//   - GUID: the System GUID formatted exactly as ipmitool's "mc guid"
//     prints it (FormatGUID), so a value copied from ipmitool matches.
//   - UUID: the same string when ipmitool's auto-detection recognised a
//     UUID version in some byte order (FormatGUID printed the dashed
//     8-4-4-4-12 form); empty when it did not (32 hex digits). IPMI's
//     System GUID is the machine's SMBIOS UUID, the value Redfish's
//     ComputerSystem.UUID and dmidecode report, so an inventory that
//     records uuid can be checked over IPMI too. BMCs disagree on the
//     GUID's byte order; when ipmitool's guess differs from SMBIOS's, the
//     UUID differs and the identity check refuses the host rather than
//     passing it.
//   - Serial: the FRU Product Serial, else the Board Serial.
//   - Model: the FRU Product Name.
//   - Vendor: the FRU Product (else Board) Manufacturer, the machine's
//     maker as Redfish's ComputerSystem.Manufacturer names it; without a
//     FRU, the BMC's IANA manufacturer from Get Device ID (which on
//     boards with an AMI or OpenBMC controller names the firmware vendor,
//     not the machine's).
//   - Firmware: the BMC firmware revision from Get Device ID.
//
// A BMC without Get System GUID (C1h) or without a FRU inventory (C1h,
// CBh), or with one rmm cannot parse, yields an identity without those
// fields rather than an error; the caller's Mismatch then reports when
// nothing could be compared. Errors are what breaks the session: timeouts,
// cancellation.
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
		id.UUID = guidUUID(id.GUID)
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
	fru, err := readFRU(ctx, s)
	if err != nil && !fruOptional(err) {
		return bmc.Identity{}, fmt.Errorf("identity: %w", err)
	}
	id.Serial = fru.Serial()
	id.Model = fru.ProductName
	if m := fru.Manufacturer(); m != "" {
		id.Vendor = m
	}
	return id, nil
}

// fruOptional reports whether a FRU read failed in a way that only costs
// the identity its FRU fields: no inventory, one rmm cannot parse, or any
// completion code (the BMC answered; the session is fine).
func fruOptional(err error) bool {
	var ce *rmcp.CompletionError
	return errors.Is(err, errNoFRU) || errors.Is(err, errBadFRU) || errors.As(err, &ce)
}

// guidUUID returns the UUID a formatted System GUID stands for: the GUID
// itself when FormatGUID recognised a version (dashed form), else "".
func guidUUID(guid string) string {
	if len(guid) != 36 || strings.Count(guid, "-") != 4 {
		return ""
	}
	return guid
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
