package testbmc

import (
	"context"
	"encoding/binary"
)

// Sensor owner IDs used by the SDR builders: the BMC itself, and the
// system-software ID the Linux kernel logs its panic event under.
const (
	OwnerBMC    = 0x20
	OwnerKernel = 0x41
)

// AddSDR stores a raw SDR record (its record ID is assigned) in the BMC's
// SDR repository, which go-ipmi's own Get SDR handlers serve.
func (t *BMC) AddSDR(rec []byte) uint16 {
	store := t.HAL.Storage().SDR()
	ids, _ := store.RecordIDs(context.Background())
	id := uint16(len(ids) + 1)
	binary.LittleEndian.PutUint16(rec[0:], id)
	_ = store.Write(context.Background(), id, rec)
	return id
}

func header(typ uint8, body []byte) []byte {
	return append([]byte{0, 0, 0x51, typ, uint8(len(body))}, body...)
}

func idString(name string) []byte { return append([]byte{0xc0 | uint8(len(name))}, name...) }

// Threshold is a full sensor record's linear conversion and thresholds:
// reading = (M*raw + B) * 10^RExp, in unit (IPMI unit code, 1 = degrees
// C, 4 = volts, 18 = RPM). Thresholds are raw values.
type Threshold struct {
	M, B               int
	RExp               int8
	Unit               uint8
	UNR, UCR, UNC      uint8
	LNR, LCR, LNC      uint8
	ReadableThresholds uint8 // bit mask: 0x3f for all six
}

// FullSensor builds a type 01h full sensor record for a threshold sensor.
func FullSensor(owner, num, sensorType uint8, name string, th Threshold) []byte {
	b := make([]byte, 42) // bytes 6-47 of Table 43-1; the ID string follows
	b[0], b[1], b[2] = owner, 0x00, num
	b[3], b[4] = 0x07, 0x01 // entity: processor 1 (any will do)
	b[5] = 0x7f             // initialization: scanning, events, thresholds
	b[6] = 0x68             // capabilities: thresholds readable/settable
	b[7], b[8] = sensorType, 0x01
	b[13] = th.ReadableThresholds // readable threshold mask (byte 20 LS)
	b[15] = 0x00                  // units 1: unsigned analog
	b[16] = th.Unit
	b[18] = 0x00 // linear
	b[19] = uint8(th.M)
	b[20] = uint8(th.M>>8) & 0x03 << 6
	b[21] = uint8(th.B)
	b[22] = uint8(th.B>>8) & 0x03 << 6
	b[24] = uint8(th.RExp)<<4 | 0x00
	b[29] = 0xff // sensor maximum reading
	b[31], b[32], b[33] = th.UNR, th.UCR, th.UNC
	b[34], b[35], b[36] = th.LNR, th.LCR, th.LNC
	return header(0x01, append(b, idString(name)...))
}

// CompactSensor builds a type 02h compact record for a discrete sensor
// with the given event/reading type (6Fh: sensor-specific).
func CompactSensor(owner, num, sensorType, eventType uint8, name string) []byte {
	b := make([]byte, 26)
	b[0], b[1], b[2] = owner, 0x00, num
	b[3], b[4] = 0x0a, 0x01 // power supply 1
	b[5], b[6] = 0x67, 0x40
	b[7], b[8] = sensorType, eventType
	b[15] = 0xc0 // units 1: no analog reading
	return header(0x02, append(b, idString(name)...))
}

// EventOnly builds a type 03h event-only record, like the "OS Stop" one
// OpenIPMI's ipmi_sim recipe defines for the kernel's panic event.
func EventOnly(owner, num, sensorType, eventType uint8, name string) []byte {
	b := make([]byte, 11)
	b[0], b[1], b[2] = owner, 0x00, num
	b[3], b[4] = 0x23, 0x01 // entity: OS
	b[5], b[6] = sensorType, eventType
	b[7] = 0x01
	return header(0x03, append(b, idString(name)...))
}

// PanicRecords returns the SEL records Linux's ipmi_msghandler logs on a
// panic: the OS Critical Stop event (generator 0041h, sensor 1, run-time
// critical stop) at time ts, then the message as 0xF0 OEM records of 11
// characters each.
func PanicRecords(ts uint32, msg string) [][16]byte {
	var ev [16]byte
	ev[2] = 0x02
	binary.LittleEndian.PutUint32(ev[3:], ts)
	ev[7], ev[8], ev[9] = OwnerKernel, 0x00, 0x04
	ev[10], ev[11], ev[12], ev[13] = 0x20, 0x01, 0x6f, 0xa1
	out := [][16]byte{ev}
	for seq := 0; len(msg) > 0; seq++ {
		var r [16]byte
		r[2], r[3], r[4] = 0xf0, 0x20, uint8(seq)
		n := copy(r[5:], msg)
		msg = msg[n:]
		out = append(out, r)
	}
	return out
}
