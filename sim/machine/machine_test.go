package machine

import (
	"strings"
	"testing"
	"time"
)

func TestPowerActions(t *testing.T) {
	tests := []struct {
		name    string
		startOn bool
		act     func(m *Machine) bool // returns the action's success
		wantOn  bool                  // right after the action
		settle  bool                  // state after the cycle delay
		wantOK  bool
	}{
		{"on from off", false, func(m *Machine) bool { m.SetPower(true); return true }, true, true, true},
		{"off from on", true, func(m *Machine) bool { m.SetPower(false); return true }, false, false, true},
		{"cycle on", true, func(m *Machine) bool { m.Cycle(); return true }, false, true, true},
		{"cycle off powers on", false, func(m *Machine) bool { m.Cycle(); return true }, false, true, true},
		{"reset on", true, func(m *Machine) bool { return m.Reset() }, true, true, true},
		{"reset off fails", false, func(m *Machine) bool { return m.Reset() }, false, false, false},
		{"soft on", true, func(m *Machine) bool { m.SoftOff(); return true }, false, false, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := New("h", DerivedIdentity("h"), WithPower(tc.startOn), WithCycleDelay(20*time.Millisecond))
			defer m.Close()
			if ok := tc.act(m); ok != tc.wantOK {
				t.Fatalf("action ok = %v, want %v", ok, tc.wantOK)
			}
			if got := m.PowerOn(); got != tc.wantOn {
				t.Fatalf("power right after = %v, want %v", got, tc.wantOn)
			}
			deadline := time.Now().Add(2 * time.Second)
			for m.PowerOn() != tc.settle && time.Now().Before(deadline) {
				time.Sleep(5 * time.Millisecond)
			}
			if got := m.PowerOn(); got != tc.settle {
				t.Fatalf("power after settling = %v, want %v", got, tc.settle)
			}
		})
	}
}

func TestSEL(t *testing.T) {
	m := New("h", DerivedIdentity("h"))
	defer m.Close()
	base := time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)
	m.SetSELTime(base)
	id1 := m.AddSEL(SELRecord{RecordType: 0x02, SensorType: 0x01, SensorNum: 0x10, EventType: 0x01, EventData: [3]byte{0x59}})
	id2 := m.AddSEL(SELRecord{RecordType: 0xf0, OEM: []byte{1, 2, 3}})
	if id1 == 0 || id2 == 0 || id1 == id2 {
		t.Fatalf("ids %d %d", id1, id2)
	}
	sel := m.SEL()
	if len(sel) != 2 {
		t.Fatalf("len = %d", len(sel))
	}
	if d := sel[0].Time.Sub(base); d < 0 || d > time.Minute {
		t.Errorf("time stamp %v not on the SEL clock (%v)", sel[0].Time, base)
	}
	if !sel[1].Time.IsZero() {
		t.Errorf("non-timestamped OEM record got time %v", sel[1].Time)
	}
	if sel[0].Message == "" || sel[0].Severity != "Critical" {
		t.Errorf("described as %q/%q, want a critical upper threshold event", sel[0].Message, sel[0].Severity)
	}
	if !m.DeleteSEL(id1) || m.DeleteSEL(id1) {
		t.Fatal("delete should succeed once")
	}
	if st := m.SELStatus(); st.Entries != 1 || st.LastErase.IsZero() {
		t.Fatalf("status %+v", st)
	}
	m.ClearSEL()
	if len(m.SEL()) != 0 || m.SELClears() != 1 {
		t.Fatal("clear")
	}
	for i := 0; i < SELCapacity; i++ {
		if m.AddSEL(SELRecord{RecordType: 0x02}) == 0 {
			t.Fatalf("add %d refused before capacity", i)
		}
	}
	if m.AddSEL(SELRecord{RecordType: 0x02}) != 0 || !m.SELStatus().Overflow {
		t.Fatal("full SEL must refuse and flag overflow")
	}
}

func TestPanic(t *testing.T) {
	m := New("h", DerivedIdentity("h"), WithPower(false))
	defer m.Close()
	m.Panic()
	if !m.PowerOn() {
		t.Error("panicked machine must be on")
	}
	sel := m.SEL()
	if len(sel) < 2 {
		t.Fatalf("want the panic event and string records, got %d", len(sel))
	}
	ev := sel[0]
	if ev.RecordType != 0x02 || ev.GeneratorID != 0x41 || ev.SensorType != 0x20 || ev.EventType != 0x6f || ev.EventData[0] != 0xa1 {
		t.Errorf("panic event %+v", ev)
	}
	var text strings.Builder
	for i, r := range sel[1:] {
		if r.RecordType != 0xf0 || len(r.OEM) != 13 || r.OEM[0] != 0x20 || int(r.OEM[1]) != i {
			t.Fatalf("string record %d: %+v", i, r)
		}
		text.WriteString(strings.TrimRight(string(r.OEM[2:]), "\x00"))
	}
	if text.String() != PanicMessage {
		t.Errorf("panic string %q, want %q", text.String(), PanicMessage)
	}
	if !strings.Contains(m.Console().History(), "Kernel panic") {
		t.Error("console has no panic trace")
	}
}

func TestDerivedIdentity(t *testing.T) {
	for _, name := range []string{"db1", "host0001", "host0999", "web-7"} {
		t.Run(name, func(t *testing.T) {
			id := DerivedIdentity(name)
			if id != DerivedIdentity(name) {
				t.Fatal("not stable")
			}
			if len(id.GUID) != 36 || id.GUID[14] != '4' || !strings.ContainsRune("89ab", rune(id.GUID[19])) {
				t.Fatalf("%s is not an RFC 4122 v4 UUID", id.GUID)
			}
			if id.GUID[21] == '1' {
				t.Fatalf("%s: clock_seq_low high nibble 1 confuses ipmitool", id.GUID)
			}
			if !strings.HasPrefix(id.Serial, "SIM") {
				t.Fatalf("serial %q", id.Serial)
			}
		})
	}
	if DerivedIdentity("a").GUID == DerivedIdentity("b").GUID {
		t.Fatal("different names, same GUID")
	}
}

func TestSensors(t *testing.T) {
	m := New("h", DerivedIdentity("h"))
	defer m.Close()
	status := func(name string) string {
		for _, r := range m.Sensors() {
			if r.Name == name {
				return r.Status()
			}
		}
		t.Fatalf("no sensor %s", name)
		return ""
	}
	for _, r := range m.Sensors() {
		if r.Status() != "ok" {
			t.Errorf("%s: %s at start", r.Name, r.Status())
		}
	}
	m.Overheat()
	if got := status(SensorCPUTemp); got != "critical" {
		t.Errorf("overheat: %s", got)
	}
	if err := m.SetSensorReading(SensorFan1, 900); err != nil {
		t.Fatal(err)
	}
	if got := status(SensorFan1); got != "warning" {
		t.Errorf("slow fan: %s", got)
	}
	if err := m.SetSensorReading("nope", 1); err == nil {
		t.Error("unknown sensor accepted")
	}
	m.SetPower(false)
	if got, inlet := status(SensorCPUTemp), status(SensorInletTemp); got != "unavailable" || inlet == "unavailable" {
		t.Errorf("off: cpu %s inlet %s", got, inlet)
	}
}
