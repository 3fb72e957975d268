package redfish

import (
	"context"
	"fmt"
	"strings"

	"github.com/rmm-project/rmm/bmc"
	"github.com/stmcginnis/gofish/redfish"
)

// Identity reads the system's UUID, serial number, manufacturer and model,
// and the managing BMC's firmware version.
func (p *Provider) Identity(ctx context.Context) (bmc.Identity, error) {
	if err := p.start(ctx); err != nil {
		return bmc.Identity{}, err
	}
	si, err := p.system()
	if err != nil {
		return bmc.Identity{}, err
	}
	cs, err := redfish.GetComputerSystem(p.api, si.uri)
	if err != nil {
		return bmc.Identity{}, fmt.Errorf("GET %s: %w", si.uri, classify(err))
	}
	id := bmc.Identity{
		UUID:   NormalizeUUID(cs.UUID),
		Serial: strings.TrimSpace(cs.SerialNumber),
		Vendor: strings.TrimSpace(cs.Manufacturer),
		Model:  strings.TrimSpace(cs.Model),
	}
	if id.Vendor == "" {
		id.Vendor = strings.TrimSpace(p.root.Vendor)
	}
	managers := si.managers
	if len(managers) == 0 {
		var c struct{ Members []link }
		if err := p.getJSON(orDefault(p.root.Managers.ID, "/redfish/v1/Managers"), &c, true); err != nil {
			return id, err
		}
		for _, m := range c.Members {
			managers = append(managers, m.ID)
		}
	}
	for _, m := range managers {
		var mgr struct{ FirmwareVersion string }
		if err := p.getJSON(m, &mgr, true); err != nil {
			return id, err
		}
		if fw := strings.TrimSpace(mgr.FirmwareVersion); fw != "" {
			id.Firmware = fw
			break
		}
	}
	return id, nil
}

// NormalizeUUID returns a UUID as lowercase 8-4-4-4-12 (Supermicro and
// some Lenovo fields are upper case; a few BMCs drop the dashes). A value
// that is not a UUID is returned trimmed and lower-cased.
func NormalizeUUID(s string) string {
	s = strings.ToLower(strings.TrimSpace(s))
	s = strings.Trim(s, "{}")
	if len(s) == 32 && !strings.Contains(s, "-") {
		s = s[0:8] + "-" + s[8:12] + "-" + s[12:16] + "-" + s[16:20] + "-" + s[20:]
	}
	return s
}
