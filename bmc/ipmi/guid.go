package ipmi

import (
	"encoding/binary"
	"fmt"
	"time"
)

// GUID byte orders ipmitool knows, in its probing order (lowest precedence
// first): RFC 4122 (all big-endian), IPMI (the spec's own, all
// little-endian, fields reversed), SMBIOS (first three fields little-endian,
// the rest big-endian).
const (
	guidRFC4122 = iota
	guidIPMI
	guidSMBIOS
	guidModes
)

// guidFields is a GUID decoded in one byte order.
type guidFields struct {
	timeLow  uint32
	timeMid  uint16
	timeHi   uint16 // time_hi_and_version
	clockSeq uint16
	node     [6]byte
}

func decodeGUID(b [16]byte, mode int) guidFields {
	var f guidFields
	switch mode {
	case guidIPMI:
		for i := range 6 {
			f.node[i] = b[5-i]
		}
		f.clockSeq = binary.LittleEndian.Uint16(b[6:])
		f.timeHi = binary.LittleEndian.Uint16(b[8:])
		f.timeMid = binary.LittleEndian.Uint16(b[10:])
		f.timeLow = binary.LittleEndian.Uint32(b[12:])
	case guidRFC4122:
		f.timeLow = binary.BigEndian.Uint32(b[0:])
		f.timeMid = binary.BigEndian.Uint16(b[4:])
		f.timeHi = binary.BigEndian.Uint16(b[6:])
		f.clockSeq = binary.BigEndian.Uint16(b[8:])
		copy(f.node[:], b[10:])
	default: // SMBIOS
		f.timeLow = binary.LittleEndian.Uint32(b[0:])
		f.timeMid = binary.LittleEndian.Uint16(b[4:])
		f.timeHi = binary.LittleEndian.Uint16(b[6:])
		f.clockSeq = binary.BigEndian.Uint16(b[8:])
		copy(f.node[:], b[10:])
	}
	return f
}

// unix returns the GUID's time stamp (100 ns units since 15 Oct 1582) as
// Unix seconds, computed the way ipmitool does (integer seconds).
func (f guidFields) unix() int64 {
	t := uint64(f.timeHi&0x0fff)<<48 | uint64(f.timeMid)<<32 | uint64(f.timeLow)
	return int64(t/10_000_000) - 12_219_292_800
}

// FormatGUID renders a System GUID exactly as `ipmitool mc guid` (1.8.19)
// prints it on its "System GUID" line, so the value rmm reports can be
// compared with what an operator copied from ipmitool into the inventory.
//
// Like ipmitool's default "auto" mode it tries the RFC 4122, IPMI and SMBIOS
// byte orders in turn: an order whose version nibble is valid (1-5) is a
// candidate and the last candidate wins, except that a time-based (version
// 1) candidate whose time stamp falls between 1970 and the current year wins
// at once. The winner prints lowercase 8-4-4-4-12; without any candidate the
// raw bytes print as 32 uppercase hex digits. now is the current time (the
// year test depends on it).
func FormatGUID(b [16]byte, now time.Time) string {
	mode := -1
	for m := range guidModes {
		f := decodeGUID(b, m)
		v := f.timeHi >> 12
		if v < 1 || v > 5 {
			continue
		}
		mode = m
		if v == 1 && timeValid(f.unix(), now) {
			break
		}
	}
	if mode < 0 {
		return fmt.Sprintf("%X", b[:])
	}
	f := decodeGUID(b, mode)
	return fmt.Sprintf("%08x-%04x-%04x-%04x-%x", f.timeLow, f.timeMid, f.timeHi, f.clockSeq, f.node[:])
}

// timeValid is ipmitool's _is_time_valid: the year lies in [1970, now].
func timeValid(sec int64, now time.Time) bool {
	y := time.Unix(sec, 0).UTC().Year()
	return y >= 1970 && y <= now.UTC().Year()
}
