package ipmisim

import (
	"context"
	"encoding/binary"
	"math"
	"slices"
	"strings"

	"github.com/bougou/go-ipmi/pkg/command/storage"
	"github.com/bougou/go-ipmi/pkg/hal"
	"github.com/bougou/go-ipmi/pkg/types"

	"github.com/rmm-project/rmm/sim/machine"
)

// The SDR repository: an MC device locator, one full sensor record per
// machine sensor, and the event-only "OS Stop" sensor that names the
// kernel panic event, byte for byte as the ipmi_sim recipe's bmc.emu.tmpl
// adds it (owner 0x41, sensor 1, type 0x20, event type 0x6f), so
//
//	ipmitool sel elist: "OS Critical Stop OS Stop | Run-time critical stop | Asserted"
//	ipmi-sel:           "OS Stop | OS Critical Stop | Run-time Critical Stop"

// OS Stop sensor identity, as Linux's panic event names it.
const (
	osStopOwner  = 0x41 // system software ID 0x20 (the kernel), as a generator ID byte
	osStopSensor = 0x01
)

// firstSensorNumber numbers the threshold sensors 0x10, 0x11, ...
const firstSensorNumber = 0x10

// sensorCodec converts between a sensor's real value and its raw byte:
// value = (M*raw + B) * 10^RExp (IPMI 2.0 section 36.3, linear, B exponent
// 0).
type sensorCodec struct {
	sensorType uint8 // IPMI sensor type (table 42-3)
	unit       uint8 // base unit (table 43-15)
	entity     uint8 // entity ID (table 43-13)
	m          int16
	b          int16
	rExp       int8
}

func codecFor(s machine.Sensor) sensorCodec {
	switch s.Kind {
	case "fan":
		return sensorCodec{sensorType: 0x04, unit: 18, entity: 0x1d, m: 60} // RPM, 60 per count
	case "voltage":
		return sensorCodec{sensorType: 0x02, unit: 4, entity: 0x0a, m: 6, rExp: -2} // volts, 0.06 per count
	default:
		entity := uint8(0x37) // air inlet
		if strings.Contains(strings.ToLower(s.Name), "cpu") {
			entity = 0x03 // processor
		}
		return sensorCodec{sensorType: 0x01, unit: 1, entity: entity, m: 1} // degrees C
	}
}

func (c sensorCodec) raw(v float64) uint8 {
	r := math.Round((v/math.Pow10(int(c.rExp)) - float64(c.b)) / float64(c.m))
	return uint8(max(0, min(255, r)))
}

// sensorDef is one machine sensor as the SDR repository presents it.
type sensorDef struct {
	number uint8
	name   string
	codec  sensorCodec
}

// sensorDefs numbers the machine's sensors in their fixed order.
func sensorDefs(m *machine.Machine) []sensorDef {
	var defs []sensorDef
	for i, r := range m.Sensors() {
		defs = append(defs, sensorDef{number: firstSensorNumber + uint8(i), name: r.Name, codec: codecFor(r.Sensor)})
	}
	return defs
}

// thresholdMask has bit 0 LNC, 1 LC, 3 UNC, 4 UC set for the thresholds a
// sensor has (IPMI 2.0 table 35-9 order; non-recoverable ones are unused).
func thresholdMask(s machine.Sensor) uint8 {
	var m uint8
	if s.LowerNonCritical != 0 {
		m |= 0x01
	}
	if s.LowerCritical != 0 {
		m |= 0x02
	}
	if s.UpperNonCritical != 0 {
		m |= 0x08
	}
	if s.UpperCritical != 0 {
		m |= 0x10
	}
	return m
}

// fullSensorRecord builds an SDR type 0x01 (IPMI 2.0 table 43-1).
func fullSensorRecord(id uint16, d sensorDef, s machine.Sensor) []byte {
	name := []byte(d.name)
	if len(name) > 16 {
		name = name[:16]
	}
	c := d.codec
	mask := thresholdMask(s)
	r := make([]byte, 48+len(name))
	binary.LittleEndian.PutUint16(r[0:], id)
	r[2] = 0x51
	r[3] = 0x01
	r[4] = byte(len(r) - 5)
	r[5] = 0x20 // owner: the BMC
	r[6] = 0x00 // LUN 0
	r[7] = d.number
	r[8] = c.entity
	r[9] = 0x01 // entity instance
	r[10] = 0x7f
	// Auto re-arm, hysteresis readable, thresholds readable, per-threshold
	// event control.
	r[11] = 0x40 | 0x10 | 0x04
	r[12] = c.sensorType
	r[13] = 0x01 // threshold event/reading type
	// Assertion event mask / lower threshold reading mask: which lower
	// thresholds Get Sensor Reading compares against (bits 12-14) and the
	// "going low" assertions those raise.
	var lower, upper uint16
	if mask&0x01 != 0 {
		lower |= 1 << 12
		lower |= 1 << 0 // LNC going low
	}
	if mask&0x02 != 0 {
		lower |= 1 << 13
		lower |= 1 << 2 // LC going low
	}
	if mask&0x08 != 0 {
		upper |= 1 << 12
		lower |= 1 << 7 // UNC going high
	}
	if mask&0x10 != 0 {
		upper |= 1 << 13
		lower |= 1 << 9 // UC going high
	}
	binary.LittleEndian.PutUint16(r[14:], lower)
	binary.LittleEndian.PutUint16(r[16:], upper)
	r[18] = mask // readable thresholds
	r[19] = 0    // settable thresholds: none
	r[20] = 0x00 // unsigned analog readings
	r[21] = c.unit
	r[22] = 0x00
	r[23] = 0x00 // linear
	r[24] = byte(c.m)
	r[25] = byte(uint16(c.m)>>8) << 6
	r[26] = byte(c.b)
	r[27] = byte(uint16(c.b)>>8) << 6
	r[28] = 0x00
	r[29] = byte(c.rExp)<<4 | 0x00
	r[30] = 0x01 // nominal reading given
	r[31] = c.raw(s.Reading)
	r[32] = 0xff
	r[33] = 0x00
	r[34] = 0xff // sensor maximum reading
	r[35] = 0x00 // sensor minimum reading
	r[36] = 0x00 // UNR
	r[37] = c.raw(s.UpperCritical)
	r[38] = c.raw(s.UpperNonCritical)
	r[39] = 0x00 // LNR
	r[40] = c.raw(s.LowerCritical)
	r[41] = c.raw(s.LowerNonCritical)
	r[42] = 0x02 // positive-going hysteresis
	r[43] = 0x02 // negative-going hysteresis
	r[47] = 0xc0 | byte(len(name))
	copy(r[48:], name)
	return r
}

// mcLocator is the SDR type 0x12 for the BMC itself (IPMI 2.0 table 43-7),
// as bmc.emu.tmpl adds it: address 0x20, channel 0, the device support bits
// of Get Device ID, entity 0x07.1, named "BMC".
func mcLocator(id uint16) []byte {
	r := []byte{0, 0, 0x51, 0x12, 0x0e, 0x20, 0x00, 0x00, 0x8f, 0x00, 0x00, 0x00, 0x07, 0x01, 0x00, 0xc3, 'B', 'M', 'C'}
	binary.LittleEndian.PutUint16(r, id)
	return r
}

// osStopRecord is the SDR type 0x03 (event-only) of the OS Stop sensor,
// bmc.emu.tmpl's record byte for byte.
func osStopRecord(id uint16) []byte {
	r := []byte{0, 0, 0x51, 0x03, 0x13,
		osStopOwner, 0x00, osStopSensor, 0x23, 0x01, 0x20, 0x6f, 0x01, 0x00, 0x00, 0x00, 0xc7,
		'O', 'S', ' ', 'S', 't', 'o', 'p'}
	binary.LittleEndian.PutUint16(r, id)
	return r
}

// storageHAL holds the SDR repository and the FRU inventory. Both are
// built once at start: the sensor set and the identity are fixed for a
// BMC's life, and their repository time stamps stay put, so FreeIPMI's SDR
// cache stays valid across runs of ipmi-sel.
type storageHAL struct {
	sdrIDs  []uint16
	sdr     map[uint16][]byte
	sensors []sensorDef
	fru     []byte
}

func newStorage(s *BMC) *storageHAL {
	st := &storageHAL{sdr: map[uint16][]byte{}, sensors: sensorDefs(s.m)}
	add := func(rec func(uint16) []byte) {
		id := uint16(len(st.sdrIDs) + 1)
		st.sdrIDs = append(st.sdrIDs, id)
		st.sdr[id] = rec(id)
	}
	add(mcLocator)
	readings := s.m.Sensors()
	for i, d := range st.sensors {
		add(func(id uint16) []byte { return fullSensorRecord(id, d, readings[i].Sensor) })
	}
	add(osStopRecord)

	fru, err := types.PackFRU(types.FRUPackConfig{
		Chassis: &types.FRUPackChassis{Type: 0x17, Serial: s.m.ID.Serial}, // rack mount chassis
		Board:   &types.FRUPackBoard{Mfg: vendorName(s.cfg.Vendor), Product: "rmm-sim board", Serial: s.m.ID.Serial},
		Product: &types.FRUPackProduct{Manufacturer: vendorName(s.cfg.Vendor), Name: "rmm-sim", Version: "1.0", Serial: s.m.ID.Serial},
	})
	if err == nil {
		st.fru = fru
	}
	return st
}

func vendorName(vendor string) string {
	switch vendor {
	case "dell":
		return "Dell Inc."
	case "hpe":
		return "HPE"
	case "lenovo":
		return "Lenovo"
	case "supermicro":
		return "Supermicro"
	}
	return "rmm-sim"
}

func (st *storageHAL) FRU() hal.FRUStore { return fruStore{st} }
func (st *storageHAL) SDR() hal.SDRStore { return sdrStore{st} }

type sdrStore struct{ st *storageHAL }

func (s sdrStore) Read(_ context.Context, id uint16) ([]byte, error) {
	if r, ok := s.st.sdr[id]; ok {
		return slices.Clone(r), nil
	}
	return nil, hal.ErrNotFound
}
func (s sdrStore) Write(context.Context, uint16, []byte) error { return hal.ErrNotSupported }
func (s sdrStore) Delete(context.Context, uint16) error        { return hal.ErrNotSupported }
func (s sdrStore) RecordIDs(context.Context) ([]uint16, error) {
	return slices.Clone(s.st.sdrIDs), nil
}

type fruStore struct{ st *storageHAL }

func (f fruStore) Read(_ context.Context, id uint8) ([]byte, error) {
	if id != 0 || f.st.fru == nil {
		return nil, hal.ErrNotFound
	}
	return slices.Clone(f.st.fru), nil
}
func (f fruStore) Write(context.Context, uint8, []byte) error { return hal.ErrNotSupported }
func (f fruStore) Delete(context.Context, uint8) error        { return hal.ErrNotSupported }
func (f fruStore) DeviceIDs(context.Context) ([]uint8, error) {
	if f.st.fru == nil {
		return nil, nil
	}
	return []uint8{0}, nil
}

// handleGetSDRRepoInfo replaces go-ipmi's, which stamps "most recent
// addition/erase" with the current time on every call: FreeIPMI then finds
// its SDR cache out of date on every run.
func handleGetSDRRepoInfo(_ context.Context, hctx *handlersContext, _ []byte) ([]byte, types.CompletionCode, error) {
	s := simOf(hctx.BMC)
	used := 0
	for _, r := range s.hal.storage.sdr {
		used += len(r)
	}
	resp := &storage.GetSDRRepoInfoResponse{
		SDRVersion:             0x51,
		RecordCount:            uint16(len(s.hal.storage.sdrIDs)),
		FreeSpaceBytes:         uint16(max(0, 0xfffe-used)),
		MostRecentAdditionTime: s.started,
		MostRecentEraseTime:    s.started,
		SDROperationSupport:    storage.SDROperationSupport{SupportReserveSDRRepo: true, SupportGetSDRRepoAllocInfo: true},
	}
	return resp.Pack(), types.CodeOK, nil
}

// findSensor returns the definition and current reading of a threshold
// sensor by number.
func (s *BMC) findSensor(number uint8) (sensorDef, machine.SensorReading, bool) {
	for i, d := range s.hal.storage.sensors {
		if d.number == number {
			readings := s.m.Sensors()
			if i < len(readings) {
				return d, readings[i], true
			}
		}
	}
	return sensorDef{}, machine.SensorReading{}, false
}

// handleGetSensorReading answers Get Sensor Reading (IPMI 2.0 section
// 35.14) with the reading and the threshold comparison bits ipmitool and
// FreeIPMI turn into "ok", "nc", "cr".
func handleGetSensorReading(_ context.Context, hctx *handlersContext, req []byte) ([]byte, types.CompletionCode, error) {
	if len(req) < 1 {
		return nil, types.CodeRequestDataLengthInvalid, nil
	}
	s := simOf(hctx.BMC)
	d, r, ok := s.findSensor(req[0])
	if !ok {
		return nil, types.CodeRequestedDataNotPresent, nil
	}
	if !r.Available {
		// Scanning disabled, reading unavailable: the host is off.
		return []byte{0x00, 0x20, 0x00, 0x80}, types.CodeOK, nil
	}
	var status uint8
	v := r.Reading
	if r.LowerNonCritical != 0 && v <= r.LowerNonCritical {
		status |= 0x01
	}
	if r.LowerCritical != 0 && v <= r.LowerCritical {
		status |= 0x02
	}
	if r.UpperNonCritical != 0 && v >= r.UpperNonCritical {
		status |= 0x08
	}
	if r.UpperCritical != 0 && v >= r.UpperCritical {
		status |= 0x10
	}
	return []byte{d.codec.raw(v), 0xc0, status, 0x80}, types.CodeOK, nil
}

// handleGetSensorThresholds answers Get Sensor Thresholds (section 35.9).
func handleGetSensorThresholds(_ context.Context, hctx *handlersContext, req []byte) ([]byte, types.CompletionCode, error) {
	if len(req) < 1 {
		return nil, types.CodeRequestDataLengthInvalid, nil
	}
	d, r, ok := simOf(hctx.BMC).findSensor(req[0])
	if !ok {
		return nil, types.CodeRequestedDataNotPresent, nil
	}
	c := d.codec
	return []byte{thresholdMask(r.Sensor),
		c.raw(r.LowerNonCritical), c.raw(r.LowerCritical), 0,
		c.raw(r.UpperNonCritical), c.raw(r.UpperCritical), 0}, types.CodeOK, nil
}

// handleGetSensorHysteresis answers Get Sensor Hysteresis (section 35.7).
func handleGetSensorHysteresis(_ context.Context, hctx *handlersContext, req []byte) ([]byte, types.CompletionCode, error) {
	if len(req) < 1 {
		return nil, types.CodeRequestDataLengthInvalid, nil
	}
	if _, _, ok := simOf(hctx.BMC).findSensor(req[0]); !ok {
		return nil, types.CodeRequestedDataNotPresent, nil
	}
	return []byte{0x02, 0x02}, types.CodeOK, nil
}

// handleGetSensorEventEnable answers Get Sensor Event Enable (section
// 35.11): events and scanning on, the SDR's assertion masks.
func handleGetSensorEventEnable(_ context.Context, hctx *handlersContext, req []byte) ([]byte, types.CompletionCode, error) {
	if len(req) < 1 {
		return nil, types.CodeRequestDataLengthInvalid, nil
	}
	s := simOf(hctx.BMC)
	for _, id := range s.hal.storage.sdrIDs {
		rec := s.hal.storage.sdr[id]
		if rec[3] == 0x01 && rec[7] == req[0] {
			return []byte{0xc0, rec[14], rec[15] & 0x0f, rec[16], rec[17] & 0x0f}, types.CodeOK, nil
		}
	}
	return nil, types.CodeRequestedDataNotPresent, nil
}
