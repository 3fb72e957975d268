package machine

import "fmt"

// sensorTypeNames are the IPMI sensor types (IPMI 2.0 table 42-3) the
// simulators log or serve; others are described by number.
var sensorTypeNames = map[uint8]string{
	0x01: "Temperature",
	0x02: "Voltage",
	0x04: "Fan",
	0x07: "Processor",
	0x08: "Power Supply",
	0x0c: "Memory",
	0x10: "Event Logging Disabled",
	0x12: "System Event",
	0x13: "Critical Interrupt",
	0x1d: "System Boot Initiated",
	0x1f: "OS Boot",
	0x20: "OS Critical Stop",
	0x23: "Watchdog 2",
}

// SensorTypeName names an IPMI sensor type ("OS Critical Stop" for 0x20).
func SensorTypeName(t uint8) string {
	if n, ok := sensorTypeNames[t]; ok {
		return n
	}
	return fmt.Sprintf("Sensor type 0x%02x", t)
}

// Describe returns the Redfish-style message and severity for a record that
// came without one (one added over IPMI, say). It knows the events the
// simulators produce by name and describes the rest by their numbers, so
// both sides of a simulated BMC show the same record the same way.
func Describe(r SELRecord) (message, severity string) {
	switch {
	case r.RecordType >= 0xe0:
		return fmt.Sprintf("OEM record 0x%02x: % x", r.RecordType, r.OEM), "OK"
	case r.RecordType >= 0xc0:
		return fmt.Sprintf("OEM timestamped record 0x%02x: % x", r.RecordType, r.OEM), "OK"
	}
	dir := "asserted"
	if r.EventType&0x80 != 0 {
		dir = "deasserted"
	}
	offset := r.EventData[0] & 0x0f
	name := SensorTypeName(r.SensorType)
	switch {
	case r.SensorType == 0x20 && r.EventType&0x7f == 0x6f && offset == 0:
		return "OS Critical Stop: critical stop during OS load", "Critical"
	case r.SensorType == 0x20 && r.EventType&0x7f == 0x6f && offset == 1:
		return "OS Critical Stop: run-time critical stop (kernel panic)", "Critical"
	case r.EventType&0x7f == 0x01: // threshold
		sev := "Warning"
		what := "non-critical threshold"
		switch offset {
		case 0x02, 0x03, 0x08, 0x09:
			sev, what = "Critical", "critical threshold"
		case 0x04, 0x05, 0x0a, 0x0b:
			sev, what = "Critical", "non-recoverable threshold"
		}
		going := "lower"
		if offset >= 0x06 {
			going = "upper"
		}
		if dir == "deasserted" {
			sev = "OK"
		}
		return fmt.Sprintf("%s sensor %d: %s %s %s", name, r.SensorNum, going, what, dir), sev
	}
	return fmt.Sprintf("%s sensor %d: event type 0x%02x offset %d %s (data %02x %02x %02x)",
		name, r.SensorNum, r.EventType&0x7f, offset, dir, r.EventData[0], r.EventData[1], r.EventData[2]), "Warning"
}
