package ipmi

import (
	"testing"

	"github.com/rmm-project/rmm/bmc"
	"github.com/rmm-project/rmm/bmc/ipmi/internal/testbmc"
)

func TestHealth(t *testing.T) {
	b := startBMC(t, testbmc.Options{})
	b.AddSDR(testbmc.FullSensor(testbmc.OwnerBMC, 0x10, 0x01, "CPU Temp", testbmc.Threshold{M: 1, Unit: 1, UCR: 90, UNC: 80, ReadableThresholds: 0x3f}))
	b.AddSDR(testbmc.FullSensor(testbmc.OwnerBMC, 0x11, 0x01, "Inlet Temp", testbmc.Threshold{M: 1, Unit: 1, UCR: 40, ReadableThresholds: 0x3f}))
	b.AddSDR(testbmc.FullSensor(testbmc.OwnerBMC, 0x12, 0x04, "FAN1", testbmc.Threshold{M: 100, Unit: 18, LNC: 10, LCR: 5, ReadableThresholds: 0x3f}))
	b.AddSDR(testbmc.FullSensor(testbmc.OwnerBMC, 0x13, 0x02, "12V", testbmc.Threshold{M: 6, RExp: -2, Unit: 4, ReadableThresholds: 0x3f}))
	b.AddSDR(testbmc.CompactSensor(testbmc.OwnerBMC, 0x14, 0x08, 0x6f, "PSU1 Status"))
	b.AddSDR(testbmc.FullSensor(testbmc.OwnerBMC, 0x15, 0x01, "Absent Temp", testbmc.Threshold{M: 1, Unit: 1}))
	b.AddSDR(testbmc.EventOnly(testbmc.OwnerKernel, 0x01, 0x20, 0x6f, "OS Stop"))
	b.Sensors.Set(0x10, 45, 0xc0, 0x00)      // 45 C, fine
	b.Sensors.Set(0x11, 41, 0xc0, 0x10)      // 41 C, above upper critical
	b.Sensors.Set(0x12, 8, 0xc0, 0x01)       // 800 RPM, below lower non-critical
	b.Sensors.Set(0x13, 200, 0xc0, 0x00)     // 12.00 V
	b.Sensors.Set(0x14, 0, 0xc0, 0x03, 0x80) // presence + failure detected
	b.Sensors.Set(0x15, 0, 0xe0, 0x00)       // reading unavailable
	p := open(t, b, 17)
	h, err := p.Health(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(h.Rollups) != 1 || h.Rollups[0].Severity != bmc.SeverityInfo {
		t.Errorf("rollups %+v", h.Rollups)
	}
	got := map[string]bmc.HealthItem{}
	for _, s := range h.Sensors {
		got[s.Name] = s
	}
	for _, tc := range []struct {
		name    string
		kind    string
		reading float64
		unit    string
		sev     bmc.Severity
	}{
		{"CPU Temp", "temperature", 45, "degrees C", bmc.SeverityInfo},
		{"Inlet Temp", "temperature", 41, "degrees C", bmc.SeverityCritical},
		{"FAN1", "fan", 800, "RPM", bmc.SeverityWarning},
		{"12V", "voltage", 12, "Volts", bmc.SeverityInfo},
		{"PSU1 Status", "power", -1, "", bmc.SeverityCritical},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, ok := got[tc.name]
			if !ok {
				t.Fatalf("sensor missing from %+v", h.Sensors)
			}
			if s.Kind != tc.kind || s.Severity != tc.sev || s.Unit != tc.unit {
				t.Errorf("%+v, want kind %s severity %s unit %q", s, tc.kind, tc.sev, tc.unit)
			}
			if tc.reading >= 0 && (s.Reading == nil || *s.Reading < tc.reading-0.001 || *s.Reading > tc.reading+0.001) {
				t.Errorf("reading %v, want %v", s.Reading, tc.reading)
			}
			if s.Severity != bmc.SeverityInfo && s.Detail == "" {
				t.Error("a non-info severity without detail")
			}
		})
	}
	if _, ok := got["Absent Temp"]; ok {
		t.Error("a sensor without a reading is listed")
	}
	if _, ok := got["OS Stop"]; ok {
		t.Error("an event-only sensor is listed")
	}
	if h.Worst() != bmc.SeverityCritical {
		t.Errorf("worst %s, want critical", h.Worst())
	}
}
