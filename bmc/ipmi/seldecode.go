package ipmi

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/bougou/go-ipmi/pkg/types"
	"github.com/rmm-project/rmm/bmc"
)

// SEL record types and event fields (IPMI v2.0 §32, §29.7).
const (
	selSystemEvent  = 0x02
	selOEMTimedMin  = 0xc0 // C0h-DFh: timestamped OEM
	selOEMUntimed   = 0xe0 // E0h-FFh: non-timestamped OEM
	selLinuxPanic   = 0xf0 // Linux ipmi_msghandler's panic string records
	sensorOSStop    = 0x20 // OS Critical Stop
	eventSensorSpec = 0x6f
	preInitTime     = 0x20000000 // earlier time stamps count from BMC boot
)

// decodeSEL decodes records in log order and then attaches Linux's panic
// text (the 0xF0 records that follow an OS Critical Stop) to that event's
// Message, so "rmm sel" shows the panic reason on the panic entry itself.
func decodeSEL(raws [][selRecordLen]byte, sdrs *sdrSet) []bmc.SELEntry {
	out := make([]bmc.SELEntry, 0, len(raws))
	for _, r := range raws {
		out = append(out, decodeRecord(r, sdrs))
	}
	for i := 0; i < len(out); i++ {
		if !out[i].IsKernelPanic() || raws[i][2] != selSystemEvent {
			continue
		}
		var text strings.Builder
		for j := i + 1; j < len(raws) && raws[j][2] == selLinuxPanic; j++ {
			text.WriteString(out[j].Message)
		}
		if text.Len() > 0 {
			out[i].Message = "kernel panic: " + text.String()
		}
	}
	return out
}

// decodeRecord decodes one 16-byte SEL record. It reads only fixed offsets
// of a fixed-size array, so no input can make it fail or panic.
func decodeRecord(r [selRecordLen]byte, sdrs *sdrSet) bmc.SELEntry {
	e := bmc.SELEntry{
		ID:       fmt.Sprintf("%x", binary.LittleEndian.Uint16(r[0:])), // hex, as ipmitool prints it
		Raw:      hex.EncodeToString(r[:]),
		Source:   "ipmi",
		Severity: bmc.SeverityInfo,
	}
	typ := r[2]
	switch {
	case typ >= selOEMUntimed:
		decodeOEMUntimed(&e, typ, r)
	case typ >= selOEMTimedMin:
		e.Time = selTime(binary.LittleEndian.Uint32(r[3:]))
		mfr := uint32(r[7]) | uint32(r[8])<<8 | uint32(r[9])<<16
		e.SensorType = fmt.Sprintf("OEM record %02x", typ)
		e.Message = fmt.Sprintf("manufacturer %06x data %x", mfr, r[10:16])
	default:
		// 00h-BFh are reserved for standard records; 02h is the only one
		// defined and the others are decoded like it, as ipmitool does.
		decodeSystemEvent(&e, r, sdrs)
	}
	return e
}

// selTime converts a SEL time stamp; values below 20000000h count seconds
// since the BMC started ("Pre-Init" in ipmitool) and FFFFFFFFh means
// unspecified, so both become the zero time.
func selTime(ts uint32) time.Time {
	if ts < preInitTime || ts == 0xffffffff {
		return time.Time{}
	}
	return time.Unix(int64(ts), 0).UTC()
}

func decodeSystemEvent(e *bmc.SELEntry, r [selRecordLen]byte, sdrs *sdrSet) {
	e.Time = selTime(binary.LittleEndian.Uint32(r[3:]))
	owner, lun := r[7], r[8]&0x03
	st := types.SensorType(r[10])
	e.SensorTypeCode = r[10]
	e.SensorNumber = r[11]
	e.SensorType = sensorTypeName(st)
	e.Sensor = sdrs.name(sensorKey{owner: owner, lun: lun, num: r[11]})
	deassert := r[12]&0x80 != 0
	et := types.EventReadingType(r[12] & 0x7f)
	e.Direction = "asserted"
	if deassert {
		e.Direction = "deasserted"
	}
	ed := types.EventData{EventData1: r[13], EventData2: r[14], EventData3: r[15]}
	e.Event = eventText(st, et, ed)
	e.Severity = eventSeverity(st, et, ed, deassert)
}

func sensorTypeName(st types.SensorType) string {
	if n := st.String(); n != "" {
		return n
	}
	if st >= 0xc0 {
		return fmt.Sprintf("OEM sensor type %02x", uint8(st))
	}
	return fmt.Sprintf("sensor type %02x", uint8(st))
}

// ipmitoolEvents holds ipmitool's wording where it differs from go-ipmi's
// table (which follows FreeIPMI's capitalisation), for the events an
// operator compares across tools. Checked against ipmitool 1.8.19 "sel
// elist" on ipmi_sim.
var ipmitoolEvents = map[types.SensorType]map[uint8]string{
	sensorOSStop: {
		0x00: "Error during system startup",
		0x01: "Run-time critical stop",
		0x02: "OS graceful stop",
		0x03: "OS graceful shutdown",
		0x04: "PEF initiated soft shutdown",
		0x05: "Agent not responding",
	},
}

// eventText names the event: the sensor-specific or generic offset name,
// or, for OEM event types, the raw event data.
func eventText(st types.SensorType, et types.EventReadingType, ed types.EventData) string {
	off := ed.EventData1 & 0x0f
	if et == eventSensorSpec {
		if m, ok := ipmitoolEvents[st]; ok {
			if s, ok := m[off]; ok {
				return s
			}
		}
	}
	if et >= types.EventReadingTypeOEMMin && et <= types.EventReadingTypeOEMMax {
		return fmt.Sprintf("OEM event type %02x data %02x%02x%02x", uint8(et), ed.EventData1, ed.EventData2, ed.EventData3)
	}
	if ev := et.EventForOffset(st, off); ev != nil {
		return ev.EventName
	}
	return ""
}

// eventSeverity is rmm's reading of go-ipmi's per-event severity (taken
// from FreeIPMI's interpretation tables): critical and non-fatal stay
// critical and warning, degraded reads as warning. An OS critical stop or
// run-time critical stop is always critical, whatever a table says.
func eventSeverity(st types.SensorType, et types.EventReadingType, ed types.EventData, deassert bool) bmc.Severity {
	off := ed.EventData1 & 0x0f
	if st == sensorOSStop && et == eventSensorSpec && off <= 0x01 && !deassert {
		return bmc.SeverityCritical
	}
	if et.EventForOffset(st, off) == nil {
		return bmc.SeverityInfo
	}
	switch et.EventSeverity(st, ed, types.EventDir(deassert)) {
	case types.EventSeverityCritical:
		return bmc.SeverityCritical
	case types.EventSeverityWarning, types.EventSeverityDegraded, types.EventSeverityNonFatal:
		return bmc.SeverityWarning
	}
	return bmc.SeverityInfo
}

// decodeOEMUntimed keeps a non-timestamped OEM record's 13 bytes (go-ipmi's
// parser copies only 6 of them) and reads Linux's panic strings: type F0h,
// byte 3 the BMC's address, byte 4 a sequence number, bytes 5-15 eleven
// characters of the panic message, NUL padded.
func decodeOEMUntimed(e *bmc.SELEntry, typ uint8, r [selRecordLen]byte) {
	if typ == selLinuxPanic {
		e.SensorType = "Linux kernel panic"
		e.Event = fmt.Sprintf("panic string part %d", r[4])
		e.Message = printable(r[5:16])
		e.Severity = bmc.SeverityCritical
		return
	}
	e.SensorType = fmt.Sprintf("OEM record %02x", typ)
	e.Message = fmt.Sprintf("data %x", r[3:16])
}

// printable returns b up to its first NUL, with control bytes replaced:
// the text goes to terminals.
func printable(b []byte) string {
	var s strings.Builder
	for _, c := range b {
		if c == 0 {
			break
		}
		if c < 0x20 || c >= 0x7f {
			c = '.'
		}
		s.WriteByte(c)
	}
	return s.String()
}
