package redfish

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/rmm-project/rmm/bmc"
)

// parseEntry decodes one LogEntry into rmm's SEL entry. It is tolerant
// where vendors differ: every member is optional and may be null or of an
// unexpected type, and the IPMI sensor type is recovered from whichever
// place the vendor puts it:
//
//   - SensorType, the Redfish enum name ("OS Stop/Shutdown"): DMTF,
//     Supermicro;
//   - Oem.Supermicro.RawEventData.SensorType, the raw code ("0x20"), with
//     OemSensorType naming OEM types ("System NIC");
//   - Lenovo's EventId for IPMI-derived events, 0x80 <event/reading type>
//     <offset> <sensor type> ... (checked against the one such event in
//     the captured XCC log, a cable presence, type 0x1b);
//   - else the message: iDRAC sends SensorType null and the HPE IML has
//     none, so an OS stop is known only by its text ("critical stop").
func parseEntry(raw []byte) (bmc.SELEntry, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return bmc.SELEntry{}, fmt.Errorf("%w: log entry is not a JSON object: %v", bmc.ErrProtocol, err)
	}
	e := bmc.SELEntry{
		ID:      str(m["Id"]),
		Message: strings.TrimSpace(str(m["Message"])),
	}
	if e.ID == "" {
		e.ID = lastSegment(str(m["@odata.id"]))
	}
	if t, ok := parseCreated(str(m["Created"])); ok {
		e.Time = t
	}
	e.Severity = entrySeverity(str(m["Severity"]), str(path(m, "Oem", "Hpe", "Severity")))
	if n, ok := num(m["SensorNumber"]); ok && n >= 0 && n <= 255 {
		e.SensorNumber = uint8(n)
	}
	code, known := uint8(0), false
	name := strings.TrimSpace(str(m["SensorType"]))
	if name != "" {
		code, known = sensorCodeByName(name)
	}
	if !known {
		if c, ok := hexByte(str(path(m, "Oem", "Supermicro", "RawEventData", "SensorType"))); ok && c != 0 {
			code, known = c, true
		}
	}
	if oem := strings.TrimSpace(str(m["OemSensorType"])); oem != "" && name == "" {
		name = oem
	}
	offset, hasOffset := uint8(0), false
	if !known {
		if c, off, ok := lenovoEventID(str(m["EventId"])); ok {
			code, known, offset, hasOffset = c, true, off, true
		}
	}
	if !known && name == "" && strings.Contains(strings.ToLower(e.Message), "critical stop") {
		code, known = 0x20, true
	}
	if known {
		e.SensorTypeCode = code
		if n, ok := ipmiSensorNames[code]; ok {
			e.SensorType = n
		}
	}
	if e.SensorType == "" && !strings.EqualFold(name, "oem") {
		e.SensorType = name
	}
	switch code := str(m["EntryCode"]); strings.ToLower(code) {
	case "assert":
		e.Direction = "asserted"
	case "deassert":
		e.Direction = "deasserted"
	case "":
	default:
		e.Event = code
	}
	if known && code == 0x20 && hasOffset {
		if ev, ok := osStopEvents[offset]; ok {
			e.Event = ev
		}
	}
	return e, nil
}

// parseCreated reads the time stamp formats BMCs send: "-05:00" (iDRAC),
// "Z" (iLO, Supermicro), ".068+00:00" (XCC), and offset-less local times.
func parseCreated(s string) (time.Time, bool) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, false
	}
	for _, layout := range []string{
		time.RFC3339Nano,
		"2006-01-02T15:04:05.999999999Z0700",
		"2006-01-02T15:04:05.999999999",
		"2006-01-02 15:04:05.999999999Z07:00",
		"2006-01-02 15:04:05.999999999",
	} {
		if t, err := time.Parse(layout, s); err == nil {
			if t.Year() < 1990 { // an unset RTC, not a time
				return time.Time{}, false
			}
			return t, true
		}
	}
	return time.Time{}, false
}

// entrySeverity maps Redfish's OK/Warning/Critical (and iLO's own words
// under Oem.Hpe when the standard one is missing).
func entrySeverity(sev, hpe string) bmc.Severity {
	for _, s := range []string{sev, hpe} {
		switch strings.ToLower(strings.TrimSpace(s)) {
		case "ok", "informational", "repaired":
			return bmc.SeverityInfo
		case "warning", "caution", "degraded":
			return bmc.SeverityWarning
		case "critical":
			return bmc.SeverityCritical
		}
	}
	return bmc.SeverityInfo
}

// lenovoEventID decodes XCC's EventId for IPMI-derived events.
func lenovoEventID(s string) (sensorType, offset uint8, ok bool) {
	s = strings.ToLower(strings.TrimSpace(s))
	if !strings.HasPrefix(s, "0x80") || len(s) != 18 {
		return 0, 0, false
	}
	v, err := strconv.ParseUint(s[2:], 16, 64)
	if err != nil {
		return 0, 0, false
	}
	b := func(i int) uint8 { return uint8(v >> (56 - 8*i)) }
	return b(3), b(2) & 0x0f, b(3) != 0
}

// osStopEvents name the offsets of IPMI sensor type 0x20.
var osStopEvents = map[uint8]string{
	0: "Critical stop during OS load",
	1: "Run-time critical stop",
	2: "OS graceful stop",
	3: "OS graceful shutdown",
	4: "Soft shutdown initiated by PEF",
	5: "Agent not responding",
}

// ipmiSensorNames are ipmitool's names for the IPMI sensor types, so a
// Redfish SEL reads like an IPMI one.
var ipmiSensorNames = map[uint8]string{
	0x01: "Temperature", 0x02: "Voltage", 0x03: "Current", 0x04: "Fan",
	0x05: "Physical Security", 0x06: "Platform Security", 0x07: "Processor",
	0x08: "Power Supply", 0x09: "Power Unit", 0x0a: "Cooling Device",
	0x0b: "Other", 0x0c: "Memory", 0x0d: "Drive Slot / Bay", 0x0e: "POST Memory Resize",
	0x0f: "System Firmwares", 0x10: "Event Logging Disabled", 0x11: "Watchdog1",
	0x12: "System Event", 0x13: "Critical Interrupt", 0x14: "Button",
	0x15: "Module / Board", 0x16: "Microcontroller", 0x17: "Add-in Card",
	0x18: "Chassis", 0x19: "Chip Set", 0x1a: "Other FRU", 0x1b: "Cable / Interconnect",
	0x1c: "Terminator", 0x1d: "System Boot Initiated", 0x1e: "Boot Error",
	0x1f: "OS Boot", 0x20: "OS Critical Stop", 0x21: "Slot / Connector",
	0x22: "System ACPI Power State", 0x23: "Watchdog2", 0x24: "Platform Alert",
	0x25: "Entity Presence", 0x26: "Monitor ASIC", 0x27: "LAN",
	0x28: "Management Subsystem Health", 0x29: "Battery", 0x2a: "Session Audit",
	0x2b: "Version Change", 0x2c: "FRU State",
}

// redfishSensorCodes maps LogEntry.SensorType enum values (DSP0268), and
// the IPMI names, to IPMI codes. Keys are squashed: lower case without
// spaces, slashes or dashes, so "Power Supply / Converter" and
// "PowerSupply/Converter" match.
var redfishSensorCodes = func() map[string]uint8 {
	m := map[string]uint8{}
	for code, n := range ipmiSensorNames {
		m[squash(n)] = code
	}
	for n, code := range map[string]uint8{
		"Physical Chassis Security": 0x05, "Platform Security Violation Attempt": 0x06,
		"Power Supply / Converter": 0x08, "PowerUnit": 0x09, "CoolingDevice": 0x0a,
		"Other Units-based Sensor": 0x0b, "System Firmware Progress": 0x0f,
		"Watchdog": 0x23, "Button/Switch": 0x14, "Microcontroller/Coprocessor": 0x16,
		"ChipSet": 0x19, "SystemBoot/Restart": 0x1d, "BaseOSBoot/InstallationStatus": 0x1f,
		"OS Stop/Shutdown": 0x20, "OS Stop": 0x20, "System ACPI PowerState": 0x22,
		"Monitor ASIC/IC": 0x26, "FRUState": 0x2c,
	} {
		m[squash(n)] = code
	}
	return m
}()

func squash(s string) string {
	return strings.Map(func(r rune) rune {
		switch r {
		case ' ', '/', '-', '_':
			return -1
		}
		if r >= 'A' && r <= 'Z' {
			return r + 'a' - 'A'
		}
		return r
	}, s)
}

func sensorCodeByName(n string) (uint8, bool) {
	c, ok := redfishSensorCodes[squash(n)]
	return c, ok
}

// str returns a JSON string value; "" for null, absent or non-strings.
func str(raw json.RawMessage) string {
	var s string
	if len(raw) == 0 || json.Unmarshal(raw, &s) != nil {
		return ""
	}
	return s
}

// num returns a JSON number (or a numeric string) as an integer.
func num(raw json.RawMessage) (int64, bool) {
	var f float64
	if len(raw) > 0 && json.Unmarshal(raw, &f) == nil && f == float64(int64(f)) {
		return int64(f), true
	}
	if s := str(raw); s != "" {
		if n, err := strconv.ParseInt(strings.TrimSpace(s), 0, 64); err == nil {
			return n, true
		}
	}
	return 0, false
}

// path walks nested objects; nil when any step is missing.
func path(m map[string]json.RawMessage, keys ...string) json.RawMessage {
	var cur json.RawMessage
	for i, k := range keys {
		if i > 0 {
			m = nil
			if json.Unmarshal(cur, &m) != nil {
				return nil
			}
		}
		cur = m[k]
		if cur == nil {
			return nil
		}
	}
	return cur
}

// hexByte parses "0x20" or "20".
func hexByte(s string) (uint8, bool) {
	s = strings.TrimPrefix(strings.ToLower(strings.TrimSpace(s)), "0x")
	if s == "" || len(s) > 2 {
		return 0, false
	}
	v, err := strconv.ParseUint(s, 16, 8)
	return uint8(v), err == nil
}

func lastSegment(uri string) string {
	uri = cleanURI(uri)
	if i := strings.LastIndex(uri, "/"); i >= 0 {
		return uri[i+1:]
	}
	return uri
}
