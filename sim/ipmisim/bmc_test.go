package ipmisim

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/bougou/go-ipmi/pkg/client"
	"github.com/bougou/go-ipmi/pkg/command/chassis"
	"github.com/bougou/go-ipmi/pkg/types"

	"github.com/rmm-project/rmm/bmc/ipmi"
	"github.com/rmm-project/rmm/sim/machine"
)

const (
	netFnApp     = types.NetFn(0x06)
	netFnStorage = types.NetFn(0x0a)
	netFnSensor  = types.NetFn(0x04)
)

func TestPower(t *testing.T) {
	tests := []struct {
		name    string
		startOn bool
		control chassis.ChassisControl
		wantCC  types.CompletionCode // 0: success
		after   bool                 // power right after the command
		settled bool                 // power once a cycle completed
		action  string               // what the machine saw
	}{
		{"on when off", false, chassis.ChassisControlPowerUp, 0, true, true, "on"},
		{"on when on", true, chassis.ChassisControlPowerUp, 0, true, true, "on"},
		{"off when on", true, chassis.ChassisControlPowerDown, 0, false, false, "off"},
		{"off when off", false, chassis.ChassisControlPowerDown, 0, false, false, "off"},
		{"cycle when on", true, chassis.ChassisControlPowerCycle, 0, false, true, "cycle"},
		{"cycle when off", false, chassis.ChassisControlPowerCycle, 0, false, true, "cycle"},
		{"reset when on", true, chassis.ChassisControlHardReset, 0, true, true, "reset"},
		{"reset when off fails", false, chassis.ChassisControlHardReset, 0xd5, false, false, "reset"},
		{"soft when on", true, chassis.ChassisControlSoftShutdown, 0, false, false, "soft"},
		{"soft when off", false, chassis.ChassisControlSoftShutdown, 0, false, false, "soft"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := startBMC(t, nil, machine.WithPower(tc.startOn))
			m := b.Machine()
			c := dial(t, b, types.CipherSuiteID3)
			defer closeClient(t, c)
			ctx := ctxT(t, 20*time.Second)

			st, err := c.GetChassisStatus(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if st.PowerIsOn != tc.startOn {
				t.Fatalf("status says on=%v, machine started on=%v", st.PowerIsOn, tc.startOn)
			}
			transitionsBefore := m.Transitions()
			_, err = c.ChassisControl(ctx, tc.control)
			cc, _ := completionCode(err)
			if tc.wantCC == 0 && err != nil || tc.wantCC != 0 && cc != tc.wantCC {
				t.Fatalf("chassis control: err %v, want completion code %#x", err, tc.wantCC)
			}
			if got := m.PowerOn(); got != tc.after {
				t.Fatalf("machine on=%v right after, want %v", got, tc.after)
			}
			if acts := m.Actions(); len(acts) != 1 || acts[0] != tc.action {
				t.Fatalf("machine saw %v, want [%s]", acts, tc.action)
			}
			eventually(t, "power settles", 3*time.Second, func() bool { return m.PowerOn() == tc.settled })
			st, err = c.GetChassisStatus(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if st.PowerIsOn != tc.settled {
				t.Fatalf("chassis status on=%v, machine on=%v", st.PowerIsOn, tc.settled)
			}
			if tc.control == chassis.ChassisControlHardReset && tc.wantCC == 0 && m.Transitions() == transitionsBefore {
				t.Error("reset did not reboot the machine")
			}
			if tc.control == chassis.ChassisControlPowerCycle && tc.startOn && m.Transitions()-transitionsBefore != 2 {
				t.Errorf("cycle made %d transitions, want off and on", m.Transitions()-transitionsBefore)
			}
		})
	}
}

func TestSEL(t *testing.T) {
	b := startBMC(t, nil)
	m := b.Machine()
	c := dial(t, b, types.CipherSuiteID17)
	defer closeClient(t, c)

	selInfo := func() (entries int, support byte) {
		t.Helper()
		r, err := raw(c, netFnStorage, 0x40)
		if err != nil {
			t.Fatal(err)
		}
		return int(binary.LittleEndian.Uint16(r[1:])), r[13]
	}
	reserve := func() []byte {
		t.Helper()
		r, err := raw(c, netFnStorage, 0x42)
		if err != nil {
			t.Fatal(err)
		}
		return r[:2]
	}
	wantCC := func(err error, cc types.CompletionCode, what string) {
		t.Helper()
		if got, ok := completionCode(err); !ok || got != cc {
			t.Fatalf("%s: err %v, want completion code %#x", what, err, cc)
		}
	}

	t.Run("empty", func(t *testing.T) {
		if n, support := selInfo(); n != 0 || support&0x0a != 0x0a {
			t.Fatalf("entries %d support %#x", n, support)
		}
		_, err := raw(c, netFnStorage, 0x43, 0, 0, 0, 0, 0, 0xff)
		wantCC(err, 0xcb, "get entry of an empty SEL")
		alloc, err := raw(c, netFnStorage, 0x41)
		if err != nil {
			t.Fatal(err)
		}
		if units, size, free := binary.LittleEndian.Uint16(alloc), binary.LittleEndian.Uint16(alloc[2:]), binary.LittleEndian.Uint16(alloc[4:]); units != machine.SELCapacity || size != 16 || free != units {
			t.Fatalf("allocation info %x", alloc)
		}
	})

	t.Run("time", func(t *testing.T) {
		want := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
		if _, err := raw(c, netFnStorage, 0x49, binary.LittleEndian.AppendUint32(nil, uint32(want.Unix()))...); err != nil {
			t.Fatal(err)
		}
		r, err := raw(c, netFnStorage, 0x48)
		if err != nil {
			t.Fatal(err)
		}
		got := time.Unix(int64(binary.LittleEndian.Uint32(r)), 0)
		if d := got.Sub(want); d < 0 || d > 5*time.Second {
			t.Fatalf("SEL time %v after setting %v", got, want)
		}
	})

	var ids []uint16
	t.Run("add", func(t *testing.T) {
		// A CPU temperature upper-critical assertion, then an OEM record.
		recs := [][]byte{
			{0, 0, 0x02, 0, 0, 0, 0, 0x20, 0x00, 0x04, 0x01, 0x10, 0x01, 0x59, 0x65, 0x5f},
			{0, 0, 0xf0, 0x20, 0x00, 'h', 'e', 'l', 'l', 'o', 0, 0, 0, 0, 0, 0},
		}
		for _, rec := range recs {
			r, err := raw(c, netFnStorage, 0x44, rec...)
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, binary.LittleEndian.Uint16(r))
		}
		_, err := raw(c, netFnStorage, 0x44, 0, 0, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
		wantCC(err, 0x80, "add an unsupported record type")
		sel := m.SEL()
		if len(sel) != 2 || sel[0].SensorType != 0x01 || sel[0].SensorNum != 0x10 || sel[0].GeneratorID != 0x20 {
			t.Fatalf("machine SEL %+v", sel)
		}
		if d := sel[0].Time.Sub(time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)); d < 0 || d > 5*time.Second {
			t.Errorf("record stamped %v, not on the SEL clock", sel[0].Time)
		}
		if !bytes.HasPrefix(sel[1].OEM, []byte{0x20, 0x00, 'h', 'e'}) {
			t.Errorf("OEM record %x", sel[1].OEM)
		}
	})

	t.Run("list", func(t *testing.T) {
		ctx := ctxT(t, 20*time.Second)
		entries, err := c.GetSELEntries(ctx, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(entries) != 2 || entries[0].RecordID != ids[0] || entries[1].RecordID != ids[1] {
			t.Fatalf("entries %+v, want ids %v", entries, ids)
		}
		if s := entries[0].Standard; s == nil || s.SensorType != types.SensorTypeTemperature || s.EventData.EventData1 != 0x59 {
			t.Fatalf("first entry %+v", entries[0].Standard)
		}
	})

	t.Run("partial read needs a reservation", func(t *testing.T) {
		_, err := raw(c, netFnStorage, 0x43, 0, 0, 0, 0, 10, 4)
		wantCC(err, 0xc5, "partial read without reservation")
		res := reserve()
		r, err := raw(c, netFnStorage, 0x43, res[0], res[1], 0, 0, 10, 4)
		if err != nil {
			t.Fatal(err)
		}
		if next := binary.LittleEndian.Uint16(r); next != ids[1] || !bytes.Equal(r[2:], []byte{0x01, 0x10, 0x01, 0x59}) {
			t.Fatalf("partial read %x", r)
		}
		newer := reserve()
		_, err = raw(c, netFnStorage, 0x43, res[0], res[1], 0, 0, 10, 4)
		wantCC(err, 0xc5, "read with a superseded reservation")
		if _, err := raw(c, netFnStorage, 0x43, newer[0], newer[1], 0xff, 0xff, 0, 0xff); err != nil {
			t.Fatalf("read last record: %v", err)
		}
	})

	t.Run("delete", func(t *testing.T) {
		id := binary.LittleEndian.AppendUint16(nil, ids[0])
		_, err := raw(c, netFnStorage, 0x46, 0, 0, id[0], id[1])
		wantCC(err, 0xc5, "delete without reservation")
		res := reserve()
		r, err := raw(c, netFnStorage, 0x46, res[0], res[1], id[0], id[1])
		if err != nil || binary.LittleEndian.Uint16(r) != ids[0] {
			t.Fatalf("delete: %x %v", r, err)
		}
		_, err = raw(c, netFnStorage, 0x46, res[0], res[1], id[0], id[1])
		wantCC(err, 0xcb, "delete twice")
		if n, _ := selInfo(); n != 1 {
			t.Fatalf("%d entries after delete", n)
		}
	})

	t.Run("clear", func(t *testing.T) {
		_, err := raw(c, netFnStorage, 0x47, 0, 0, 'C', 'L', 'R', 0xaa)
		wantCC(err, 0xc5, "clear without reservation")
		res := reserve()
		_, err = raw(c, netFnStorage, 0x47, res[0], res[1], 'C', 'L', 'X', 0xaa)
		wantCC(err, 0xcc, "clear without CLR")
		if r, err := raw(c, netFnStorage, 0x47, res[0], res[1], 'C', 'L', 'R', 0xaa); err != nil || r[0]&0x0f != 1 {
			t.Fatalf("clear: %x %v", r, err)
		}
		if r, err := raw(c, netFnStorage, 0x47, res[0], res[1], 'C', 'L', 'R', 0x00); err != nil || r[0]&0x0f != 1 {
			t.Fatalf("erasure status: %x %v", r, err)
		}
		if n, _ := selInfo(); n != 0 || m.SELClears() != 1 {
			t.Fatalf("%d entries, %d clears", n, m.SELClears())
		}
	})
}

func TestPanickedSEL(t *testing.T) {
	b := startBMC(t, nil, machine.WithPower(false))
	b.Machine().Panic()
	c := dial(t, b, types.CipherSuiteID3)
	defer closeClient(t, c)
	ctx := ctxT(t, 20*time.Second)

	st, err := c.GetChassisStatus(ctx)
	if err != nil || !st.PowerIsOn {
		t.Fatalf("panicked machine must be on: %+v %v", st, err)
	}
	entries, err := c.GetSELEntries(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) < 2 {
		t.Fatalf("%d entries", len(entries))
	}
	ev := entries[0].Standard
	if ev == nil || ev.GeneratorID != 0x0041 || ev.SensorType != 0x20 || ev.SensorNumber != 1 ||
		ev.EventReadingType != 0x6f || ev.EventData.EventData1 != 0xa1 {
		t.Fatalf("panic event %+v", ev)
	}
	// go-ipmi's client keeps only 6 of the 13 bytes of a non-timestamped
	// OEM record (types.parseSELOEMNonTimestamped), so read those raw.
	var text strings.Builder
	for i, e := range entries[1:] {
		if e.RecordType != 0xf0 {
			t.Fatalf("string record %+v", e)
		}
		id := binary.LittleEndian.AppendUint16(nil, e.RecordID)
		r, err := raw(c, netFnStorage, 0x43, 0, 0, id[0], id[1], 0, 0xff)
		if err != nil {
			t.Fatal(err)
		}
		if rec := r[2:]; rec[3] != 0x20 || int(rec[4]) != i {
			t.Fatalf("string record %d: %x", i, rec)
		}
		text.WriteString(strings.TrimRight(string(r[2+5:]), "\x00"))
	}
	if text.String() != machine.PanicMessage {
		t.Fatalf("panic string %q", text.String())
	}

	// The SDR names the sensor of the panic event.
	rec := readSDR(t, c, 0xffff) // the last record is OS Stop
	if rec[3] != 0x03 || rec[5] != 0x41 || rec[7] != 0x01 || rec[10] != 0x20 || rec[11] != 0x6f ||
		!bytes.HasSuffix(rec, []byte("OS Stop")) {
		t.Fatalf("OS Stop SDR %x", rec)
	}
}

func TestIdentity(t *testing.T) {
	tests := []struct{ name, vendor string }{{"openbmc", ""}, {"dell", "dell"}, {"supermicro", "supermicro"}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := startBMC(t, func(c *Config) { c.Vendor = tc.vendor })
			c := dial(t, b, types.CipherSuiteID3)
			defer closeClient(t, c)
			ctx := ctxT(t, 20*time.Second)

			g, err := c.GetSystemGUID(ctx)
			if err != nil {
				t.Fatal(err)
			}
			u, err := types.ParseGUID(g.GUID[:], types.GUIDModeIPMI)
			if err != nil {
				t.Fatal(err)
			}
			if u.String() != b.Machine().ID.GUID {
				t.Fatalf("GUID %s, machine %s", u, b.Machine().ID.GUID)
			}
			id, err := c.GetDeviceID(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if want := deviceInfo(tc.vendor).ManufacturerID; uint32(id.ManufacturerID) != want {
				t.Fatalf("manufacturer %d, want %d", id.ManufacturerID, want)
			}
			fru, err := c.GetFRUs(ctx)
			if err != nil || len(fru) == 0 || fru[0].ProductInfoArea == nil {
				t.Fatalf("FRU: %+v %v", fru, err)
			}
			if got := string(fru[0].ProductInfoArea.SerialNumber); got != b.Machine().ID.Serial {
				t.Fatalf("FRU serial %q, machine %q", got, b.Machine().ID.Serial)
			}
		})
	}
}

func TestGUIDBytes(t *testing.T) {
	now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	rev := func(s string) [16]byte {
		raw, _ := hex.DecodeString(strings.ReplaceAll(s, "-", ""))
		var b [16]byte
		for i := range 16 {
			b[i] = raw[15-i]
		}
		return b
	}
	derived := machine.DerivedIdentity("db1").GUID
	for _, tc := range []struct {
		name, guid string
		want       [16]byte
		readsBack  bool // ipmitool prints guid itself
	}{
		{"version 4: IPMI layout", derived, rev(derived), true},
		{"version 1: IPMI layout", "0f23fa4c-2d1e-11f0-9a07-b0a1c2d3e4f5", rev("0f23fa4c-2d1e-11f0-9a07-b0a1c2d3e4f5"), true},
		// Variant nibble 3 reads as version 3 in the SMBIOS decoding of
		// the IPMI layout, which ipmitool would print; the SMBIOS layout
		// reads back.
		{"pre-RFC 4122 variant: SMBIOS layout", "12345678-9abc-4def-3456-56789abcdef0",
			[16]byte{0x78, 0x56, 0x34, 0x12, 0xbc, 0x9a, 0xef, 0x4d, 0x34, 0x56, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0}, true},
		// Version 6 reads back in no layout: ipmitool prints hex digits.
		{"no version: IPMI layout", "00112233-4455-6677-8899-aabbccddeeff", rev("00112233-4455-6677-8899-aabbccddeeff"), false},
		// Clock sequence 0xbe11 is a plausible version 1 time stamp in
		// the IPMI decoding of every layout.
		{"unrescuable: IPMI layout", "3b5e2a10-9c4d-4f21-be11-0123456789ab", rev("3b5e2a10-9c4d-4f21-be11-0123456789ab"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g, err := guidBytes(tc.guid, now)
			if err != nil {
				t.Fatal(err)
			}
			if g != tc.want {
				t.Errorf("% x, want % x", g, tc.want)
			}
			printed := ipmi.FormatGUID(g, now)
			if (printed == tc.guid) != tc.readsBack {
				t.Errorf("ipmitool would print %s for %s; reads back %v, want %v", printed, tc.guid, printed == tc.guid, tc.readsBack)
			}
		})
	}
	for _, bad := range []string{"", "00112233-4455-6677-8899-aabbccddeeXX", "0011223344556677", "00112233445566778899aabbccddeeff",
		"0011223-34455-6677-8899-aabbccddeeff0"} {
		if _, err := guidBytes(bad, now); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// TestIpmitoolGUID checks the simulator's copy of ipmitool's GUID guess
// against the client's (bmc/ipmi.FormatGUID, itself checked against
// ipmitool) on random GUIDs, time-based ones among them.
func TestIpmitoolGUID(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	for i := range 20000 {
		var b [16]byte
		for j := range b {
			b[j] = byte(r.Uint32())
		}
		if i%2 == 0 { // plant a version 1 nibble where one decoding looks
			b[[]int{6, 7, 9}[i%3]] = b[[]int{6, 7, 9}[i%3]]&0x0f | 0x10
		}
		if got, want := ipmitoolGUID(b, now), ipmi.FormatGUID(b, now); got != want {
			t.Fatalf("% x: simulator %s, client %s", b, got, want)
		}
	}
}

func TestSensors(t *testing.T) {
	readStatus := func(t *testing.T, b *BMC, number uint8) (raw0 uint8, flags, status uint8) {
		t.Helper()
		c := dial(t, b, types.CipherSuiteID3)
		defer closeClient(t, c)
		r, err := raw(c, netFnSensor, 0x2d, number)
		if err != nil {
			t.Fatal(err)
		}
		return r[0], r[1], r[2]
	}
	t.Run("healthy", func(t *testing.T) {
		b := startBMC(t, nil)
		c := dial(t, b, types.CipherSuiteID3)
		defer closeClient(t, c)
		sensors, err := c.GetSensors(ctxT(t, 20*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]float64{}
		for _, s := range sensors {
			got[s.Name] = s.Value
			if s.Threshold.ThresholdStatus != types.SensorThresholdStatus_OK {
				t.Errorf("%s: status %v", s.Name, s.Threshold.ThresholdStatus)
			}
		}
		for _, r := range b.Machine().Sensors() {
			if v, ok := got[r.Name]; !ok || v < r.Reading-0.1 || v > r.Reading+0.1 {
				t.Errorf("%s: read %v (present %v), machine %v", r.Name, v, ok, r.Reading)
			}
		}
	})
	t.Run("overheat", func(t *testing.T) {
		b := startBMC(t, nil)
		b.Machine().Overheat()
		reading, _, status := readStatus(t, b, firstSensorNumber)
		if reading != machine.OverheatReading || status&0x18 != 0x18 {
			t.Fatalf("reading %d status %#x, want %d and above UNC+UC", reading, status, machine.OverheatReading)
		}
	})
	t.Run("fan below lower critical", func(t *testing.T) {
		b := startBMC(t, nil)
		if err := b.Machine().SetSensorReading(machine.SensorFan2, 300); err != nil {
			t.Fatal(err)
		}
		_, _, status := readStatus(t, b, firstSensorNumber+3)
		if status&0x03 != 0x03 {
			t.Fatalf("status %#x, want below LNC+LC", status)
		}
	})
	t.Run("host off", func(t *testing.T) {
		b := startBMC(t, nil, machine.WithPower(false))
		_, flags, _ := readStatus(t, b, firstSensorNumber)
		if flags&0x20 == 0 {
			t.Fatalf("CPU temp of an off host must read unavailable, flags %#x", flags)
		}
		_, flags, _ = readStatus(t, b, firstSensorNumber+1)
		if flags&0x20 != 0 {
			t.Fatalf("inlet temp is a standby sensor, flags %#x", flags)
		}
	})
	t.Run("thresholds", func(t *testing.T) {
		b := startBMC(t, nil)
		c := dial(t, b, types.CipherSuiteID3)
		defer closeClient(t, c)
		r, err := raw(c, netFnSensor, 0x27, firstSensorNumber)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(r, []byte{0x18, 0, 0, 0, 85, 95, 0}) {
			t.Fatalf("CPU thresholds %x", r)
		}
		_, err = raw(c, netFnSensor, 0x2d, 0x7f)
		if cc, _ := completionCode(err); cc != 0xcb {
			t.Fatalf("unknown sensor: %v", err)
		}
	})
}

// readSDR reads one SDR in 16-byte pieces, as ipmitool does.
func readSDR(t *testing.T, c *client.Client, id uint16) []byte {
	t.Helper()
	res, err := raw(c, netFnStorage, 0x22)
	if err != nil {
		t.Fatal(err)
	}
	idb := binary.LittleEndian.AppendUint16(nil, id)
	var rec []byte
	for off := 0; off < 5 || off < 5+int(rec[4]); {
		n := 16
		if off >= 5 {
			n = min(16, 5+int(rec[4])-off)
		} else {
			n = 5
		}
		r, err := raw(c, netFnStorage, 0x23, res[0], res[1], idb[0], idb[1], byte(off), byte(n))
		if err != nil {
			t.Fatalf("get SDR %#x at %d: %v", id, off, err)
		}
		rec = append(rec, r[2:]...)
		off += len(r) - 2
	}
	return rec
}
