package redfishsim

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/rmm-project/rmm/sim/machine"
)

// vendor holds what differs between the BMCs beyond their trees: where the
// System Event Log lives, how entries and sessions look, and how a
// successful action is answered. Everything here copies the captured
// trees' own style; where a capture does not show a behaviour (the body of
// a Reset reply, a session id scheme) the comment says what it is based on.
type vendor struct {
	name string
	// selService is the log service that shows the machine's SEL: the
	// IPMI SEL where the BMC has one with entries, else the nearest thing.
	selService string
	// caseInsensitive: iLO answers /redfish/v1/systems/1 like Systems/1.
	caseInsensitive bool
	// absoluteLocation: iLO's session Location header is a full URL
	// naming the BMC's own address, with a trailing slash.
	absoluteLocation bool
	// ilOSuccess: iLO answers a successful action 200 with a body shaped
	// like an error carrying Base.x.Success, instead of 204.
	iloSuccess bool
	// created formats an entry's time stamp the way the vendor does.
	created func(time.Time) string
	// entry renders one machine SEL record as a LogEntry.
	entry func(tmpl object, uri, id string, r machine.SELRecord, when time.Time) object
	// sessionID names the n-th session of this server.
	sessionID func(n int, user string) string
}

var vendors = map[string]*vendor{
	"dell": {
		name:       "dell",
		selService: "/redfish/v1/Managers/iDRAC.Embedded.1/LogServices/Sel",
		created:    dellTime,
		entry:      dellEntry,
		sessionID:  func(n int, _ string) string { return strconv.Itoa(274 + n) },
	},
	"hpe": {
		name:             "hpe",
		selService:       "/redfish/v1/Systems/1/LogServices/IML",
		caseInsensitive:  true,
		absoluteLocation: true,
		iloSuccess:       true,
		created:          utcTime,
		entry:            hpeEntry,
		// iLO session ids are the user name, 16 hex digits of the login
		// time and 8 random ones ("root0000000066be767add7686c8").
		sessionID: func(_ int, user string) string {
			return fmt.Sprintf("%s%016x%s", user, time.Now().Unix(), randomHex(4))
		},
	},
	"lenovo": {
		name:       "lenovo",
		selService: "/redfish/v1/Systems/1/LogServices/PlatformLog",
		created:    lenovoTime,
		entry:      lenovoEntry,
		sessionID:  func(n int, _ string) string { return strconv.Itoa(27 + n) },
	},
	"supermicro": {
		name:       "supermicro",
		selService: "/redfish/v1/Systems/1/LogServices/Log1",
		created:    utcTime,
		entry:      supermicroEntry,
		sessionID:  func(n int, _ string) string { return strconv.Itoa(2 + n) },
	},
	"dmtf": {
		name:       "dmtf",
		selService: "/redfish/v1/Systems/437XR1138R2/LogServices/Log1",
		created:    utcTime,
		entry:      dmtfEntry,
		sessionID:  func(int, string) string { return strings.ToUpper(randomHex(8)) },
	},
}

// dellTime is iDRAC's local time with its offset
// ("2024-06-11T00:13:00-05:00"); the captured iDRAC ran at -05:00.
func dellTime(t time.Time) string { return t.In(time.FixedZone("", -5*3600)).Format(time.RFC3339) }

// lenovoTime is XCC's: milliseconds and a numeric UTC offset
// ("2024-07-18T22:02:12.068+00:00").
func lenovoTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000-07:00") }

// utcTime is iLO's, Supermicro's and DMTF's ("2023-01-18T23:13:27Z").
func utcTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05Z") }

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// redfishSensorTypes are the LogEntry.SensorType enum values (DSP0268) for
// the IPMI sensor type codes.
var redfishSensorTypes = map[uint8]string{
	0x01: "Temperature", 0x02: "Voltage", 0x03: "Current", 0x04: "Fan",
	0x05: "Physical Chassis Security", 0x06: "Platform Security Violation Attempt",
	0x07: "Processor", 0x08: "Power Supply / Converter", 0x09: "PowerUnit",
	0x0a: "CoolingDevice", 0x0b: "Other Units-based Sensor", 0x0c: "Memory",
	0x0d: "Drive Slot/Bay", 0x0e: "POST Memory Resize", 0x0f: "System Firmware Progress",
	0x10: "Event Logging Disabled", 0x11: "Watchdog", 0x12: "System Event",
	0x13: "Critical Interrupt", 0x14: "Button/Switch", 0x15: "Module/Board",
	0x16: "Microcontroller/Coprocessor", 0x17: "Add-in Card", 0x18: "Chassis",
	0x19: "ChipSet", 0x1a: "Other FRU", 0x1b: "Cable/Interconnect", 0x1c: "Terminator",
	0x1d: "SystemBoot/Restart", 0x1e: "Boot Error", 0x1f: "BaseOSBoot/InstallationStatus",
	0x20: "OS Stop/Shutdown", 0x21: "Slot/Connector", 0x22: "System ACPI PowerState",
	0x23: "Watchdog", 0x24: "Platform Alert", 0x25: "Entity Presence",
	0x26: "Monitor ASIC/IC", 0x27: "LAN", 0x28: "Management Subsystem Health",
	0x29: "Battery", 0x2a: "Session Audit", 0x2b: "Version Change", 0x2c: "FRUState",
}

func sensorTypeName(r machine.SELRecord) any {
	if r.RecordType >= 0xc0 {
		return "OEM"
	}
	if n, ok := redfishSensorTypes[r.SensorType]; ok {
		return n
	}
	return nil
}

func entryCode(r machine.SELRecord) string {
	if r.EventType&0x80 != 0 {
		return "Deassert"
	}
	return "Assert"
}

func severity(r machine.SELRecord) string {
	switch r.Severity {
	case "Warning", "Critical":
		return r.Severity
	}
	return "OK"
}

func message(r machine.SELRecord) string {
	if r.Message != "" {
		return r.Message
	}
	if r.RecordType >= 0xc0 {
		return fmt.Sprintf("OEM record %02x: %x", r.RecordType, r.OEM)
	}
	return fmt.Sprintf("sensor type 0x%02x #%d event 0x%02x", r.SensorType, r.SensorNum, r.EventType)
}

// newEntry copies the template's @odata.type and friends and clears the
// fields a new entry must not inherit.
func newEntry(tmpl object, uri, id string) object {
	o := object{}
	for _, k := range []string{"@odata.context", "@odata.type"} {
		if v := tmpl.get(k); v != nil {
			o = append(o, member{Key: k, Val: v})
		}
	}
	o.set("@odata.id", uri)
	o.set("Id", id)
	return o
}

// dellEntry follows iDRAC's Sel entries: EntryType SEL, SensorType always
// null (every captured entry has it so), MessageId an opaque hex string.
func dellEntry(tmpl object, uri, id string, r machine.SELRecord, when time.Time) object {
	o := newEntry(tmpl, uri, id)
	o.set("Created", dellTime(when))
	o.set("Description", "Log Entry "+id)
	o.set("EntryCode", entryCode(r))
	o.set("EntryType", "SEL")
	o.set("GeneratorId", fmt.Sprintf("0x%04x", r.GeneratorID))
	o.set("Links", struct{}{})
	o.set("Message", message(r))
	o.set("MessageArgs", []string{})
	o.set("MessageArgs@odata.count", 0)
	o.set("MessageId", fmt.Sprintf("%02x%02x%02x%02x", r.SensorType, r.SensorNum, r.EventType, r.EventData[0]))
	o.set("Name", "Log Entry "+id)
	o.set("SensorNumber", int(r.SensorNum))
	o.set("SensorType", nil)
	o.set("Severity", severity(r))
	return o
}

// hpeEntry follows the IML: EntryType Oem, OemRecordFormat Hpe-IML, no
// SensorType at all, and iLO's own severity words under Oem.Hpe. The class
// and code are the simulator's: the captures hold no OS-stop event.
func hpeEntry(tmpl object, uri, id string, r machine.SELRecord, when time.Time) object {
	o := newEntry(tmpl, uri, id)
	ts := utcTime(when)
	o.set("Created", ts)
	o.set("EntryType", "Oem")
	o.set("Message", message(r))
	o.set("Name", "Integrated Management Log")
	hpeSev := map[string]string{"OK": "Informational", "Warning": "Caution", "Critical": "Critical"}[severity(r)]
	n, _ := strconv.Atoi(id)
	o.set("Oem", map[string]any{"Hpe": object{
		{Key: "@odata.context", Val: []byte(`"/redfish/v1/$metadata#HpeLogEntry.HpeLogEntry"`)},
		{Key: "@odata.type", Val: []byte(`"#HpeLogEntry.v2_4_0.HpeLogEntry"`)},
		{Key: "Categories", Val: []byte(`["Hardware"]`)},
		{Key: "Class", Val: []byte(strconv.Itoa(int(r.SensorType)))},
		{Key: "ClassDescription", Val: []byte(`"Operating System"`)},
		{Key: "Code", Val: []byte(strconv.Itoa(int(r.EventData[0] & 0x0f)))},
		{Key: "Count", Val: []byte(`1`)},
		{Key: "EventNumber", Val: []byte(strconv.Itoa(122 + n))},
		{Key: "Severity", Val: mustJSON(hpeSev)},
		{Key: "Updated", Val: mustJSON(ts)},
	}})
	o.set("OemRecordFormat", "Hpe-IML")
	o.set("Severity", severity(r))
	return o
}

// lenovoEntry follows XCC's PlatformLog: EntryType Oem, OemRecordFormat
// Lenovo, an EventId that for IPMI-derived events reads 0x80, event/reading
// type, offset, sensor type, sensor number (the one captured IPMI event,
// "0x806f001b1f02ffff", is a cable/interconnect presence, type 0x1b), and
// the Lenovo Oem block.
func lenovoEntry(tmpl object, uri, id string, r machine.SELRecord, when time.Time) object {
	o := object{}
	eventID := fmt.Sprintf("0x80%02x%02x%02x%02x00ffff", r.EventType, r.EventData[0]&0x0f, r.SensorType, r.SensorNum)
	if r.RecordType >= 0xc0 {
		eventID = fmt.Sprintf("0x%02x00000000000000", r.RecordType)
	}
	n, _ := strconv.Atoi(id)
	o.set("EntryType", "Oem")
	o.set("OemRecordFormat", "Lenovo")
	o.set("Created", lenovoTime(when))
	o.set("EventId", eventID)
	o.set("Oem", map[string]any{"Lenovo": object{
		{Key: "@odata.type", Val: []byte(`"#LenovoLogEntry.v1_0_0.PlatformLogEntry"`)},
		{Key: "Serviceable", Val: []byte(`"Not Serviceable"`)},
		{Key: "EventType", Val: []byte(`0`)},
		{Key: "TotalSequenceNumber", Val: []byte(strconv.Itoa(n))},
		{Key: "ReportingChain", Val: []byte(`"XCC"`)},
		{Key: "Source", Val: []byte(`"System"`)},
		{Key: "Hidden", Val: []byte(`false`)},
		{Key: "EventID", Val: mustJSON(eventID)},
		{Key: "EventSequenceNumber", Val: []byte(strconv.Itoa(n))},
	}})
	o.set("Id", id)
	o.set("Severity", severity(r))
	o.set("Message", message(r))
	o.set("@odata.id", uri)
	o.set("Description", "This resource is used to represent a log entry for log services for a Redfish implementation.")
	o.set("EventGroupId", 0)
	for _, k := range []string{"@odata.context", "@odata.type"} {
		if v := tmpl.get(k); v != nil {
			o = append(o, member{Key: k, Val: v})
		}
	}
	o.set("Name", "LogEntry")
	o.set("MessageArgs", []string{})
	return o
}

// supermicroEntry follows the Health Event Log: EntryType SEL, the Redfish
// SensorType name, the raw IPMI sensor type under Oem.Supermicro, and a
// message with a bracketed code ("[PWR-0000] ...").
func supermicroEntry(tmpl object, uri, id string, r machine.SELRecord, when time.Time) object {
	o := newEntry(tmpl, uri, id)
	o.set("Name", "Health Event Log Entry "+id)
	o.set("EntryType", "SEL")
	o.set("Severity", severity(r))
	o.set("Created", utcTime(when))
	o.set("EntryCode", entryCode(r))
	o.set("SensorType", sensorTypeName(r))
	o.set("SensorNumber", int(r.SensorNum))
	o.set("Message", "[OS-0001] "+message(r))
	o.set("MessageId", fmt.Sprintf("0x%02X%02X%02X", r.EventData[0], r.EventData[1], r.EventData[2]))
	o.set("GeneratorId", fmt.Sprintf("0x%04X", r.GeneratorID))
	o.set("Oem", map[string]any{"Supermicro": object{
		{Key: "@odata.type", Val: []byte(`"#SmcLogEntryExtensions.v1_0_1.LogEntry"`)},
		{Key: "RawEventData", Val: mustJSON(object{
			{Key: "EventDirAndType", Val: mustJSON(fmt.Sprintf("0x%02X", r.EventType))},
			{Key: "SensorType", Val: mustJSON(fmt.Sprintf("0x%02X", r.SensorType))},
			{Key: "SensorName", Val: []byte(`null`)},
		})},
	}})
	return o
}

// dmtfEntry follows DMTF's reference: EntryType SEL with SensorType,
// SensorNumber, EntryCode and a MessageId of the event data.
func dmtfEntry(tmpl object, uri, id string, r machine.SELRecord, when time.Time) object {
	o := newEntry(tmpl, uri, id)
	o.set("Name", "Log Entry "+id)
	o.set("EntryType", "SEL")
	o.set("Severity", severity(r))
	o.set("Created", utcTime(when))
	o.set("EntryCode", entryCode(r))
	o.set("SensorType", sensorTypeName(r))
	o.set("SensorNumber", int(r.SensorNum))
	o.set("Message", message(r))
	o.set("MessageId", fmt.Sprintf("0x%02X%02X%02X", r.EventData[0], r.EventData[1], r.EventData[2]))
	return o
}

func mustJSON(v any) []byte {
	o := object{}
	o.set("v", v)
	return o[0].Val
}
