package redfish

import (
	"context"
	"encoding/json"
	"strings"

	"github.com/rmm-project/rmm/bmc"
)

// ConsoleInfo lists what the BMC advertises: the system's own
// SerialConsole (IPMI, SSH, Telnet with ports and, on Supermicro, the
// command that enters the console from the BMC's shell), then each
// manager's SerialConsole and CommandShell connect types. Manager
// SerialConsole is deprecated in newer schemas, and Supermicro reports its
// SSH console only on the ComputerSystem.
func (p *Provider) ConsoleInfo(ctx context.Context) (bmc.ConsoleInfo, error) {
	if err := p.start(ctx); err != nil {
		return bmc.ConsoleInfo{}, err
	}
	si, err := p.system()
	if err != nil {
		return bmc.ConsoleInfo{}, err
	}
	var info bmc.ConsoleInfo
	var sys struct {
		SerialConsole map[string]json.RawMessage
	}
	if err := p.getJSON(si.uri, &sys, true); err != nil {
		return info, err
	}
	for _, proto := range []string{"IPMI", "SSH", "Telnet"} {
		raw, ok := sys.SerialConsole[proto]
		if !ok {
			continue
		}
		var c struct {
			ServiceEnabled      bool
			Port                int
			ConsoleEntryCommand string
		}
		if json.Unmarshal(raw, &c) != nil {
			continue
		}
		info.Transports = append(info.Transports, bmc.ConsoleTransport{
			Kind: consoleKind(proto), Enabled: c.ServiceEnabled, Port: validPort(c.Port),
			EntryCommand: c.ConsoleEntryCommand, Where: si.uri + "#SerialConsole/" + proto,
		})
	}
	managers := si.managers
	if len(managers) == 0 {
		var c struct{ Members []link }
		if err := p.getJSON(orDefault(p.root.Managers.ID, "/redfish/v1/Managers"), &c, true); err != nil {
			return info, err
		}
		for _, m := range c.Members {
			managers = append(managers, m.ID)
		}
	}
	type service struct {
		ServiceEnabled        bool
		ConnectTypesSupported []string
	}
	for _, m := range managers {
		var mgr struct {
			SerialConsole *service
			CommandShell  *service
		}
		if err := p.getJSON(m, &mgr, true); err != nil {
			return info, err
		}
		for _, s := range []struct {
			name string
			svc  *service
		}{{"SerialConsole", mgr.SerialConsole}, {"CommandShell", mgr.CommandShell}} {
			if s.svc == nil {
				continue
			}
			for _, ct := range s.svc.ConnectTypesSupported {
				kind := consoleKind(ct)
				if kind == "" {
					continue // "Oem": nothing rmm can use
				}
				info.Transports = append(info.Transports, bmc.ConsoleTransport{
					Kind: kind, Enabled: s.svc.ServiceEnabled, Where: m + "#" + s.name,
				})
			}
		}
	}
	return info, nil
}

func consoleKind(proto string) string {
	switch strings.ToLower(proto) {
	case "ipmi":
		return "ipmi-sol"
	case "ssh":
		return "ssh"
	case "telnet":
		return "telnet"
	}
	return ""
}

func validPort(p int) int {
	if p > 0 && p < 65536 {
		return p
	}
	return 0
}
