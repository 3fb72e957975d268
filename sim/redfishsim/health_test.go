package redfishsim

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/rmm-project/rmm/bmc"
	"github.com/rmm-project/rmm/bmc/redfish"
	"github.com/rmm-project/rmm/secret"
	"github.com/rmm-project/rmm/sim/machine"
)

// health reads f's server with rmm's own Redfish provider.
func (f *fixture) health(t *testing.T) bmc.Health {
	t.Helper()
	p, err := redfish.New(bmc.Target{Name: f.srv.Vendor(), Addr: f.srv.Addr().Addr(), RedfishPort: f.srv.Addr().Port(),
		Protocols: []bmc.Protocol{bmc.ProtocolRedfish}, Username: testUser, Password: secret.New(testPass),
		TLS: bmc.TLSConfig{Fingerprint: f.srv.Fingerprint()}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := p.Open(ctx); err != nil {
		t.Fatal(err)
	}
	defer p.Close(ctx)
	h, err := p.(bmc.HealthReader).Health(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// TestOverheat: the machine's CPU temperature shows in every vendor's tree
// (each has temperatures), read with bmc/redfish's Health reader: healthy,
// the machine's reading with severity info; overheated, a critical
// temperature sensor reading 101 C and critical System and Chassis
// rollups. With the legacy Thermal resources hidden, the trees whose
// Sensors collection has the CPU temperature (iDRAC, XCC) show it there.
func TestOverheat(t *testing.T) {
	cpuName := map[string]string{"dell": "CPU1 Temp", "hpe": "02-CPU 1", "lenovo": "CPU 1 Temp", "supermicro": "CPU1 Temp", "dmtf": "CPU1 Temp"}
	inSensors := map[string]bool{"dell": true, "lenovo": true}
	for _, v := range vendorNames {
		for _, legacy := range []bool{true, false} {
			name := v
			if !legacy {
				name += " without Thermal"
				if !inSensors[v] {
					continue
				}
			}
			t.Run(name, func(t *testing.T) {
				f := start(t, v)
				if !legacy {
					f.srv.SetFaults(Faults{HideLegacy: true})
				}
				cpu := func(h bmc.Health) *bmc.HealthItem {
					for i, s := range h.Sensors {
						if s.Name == cpuName[v] && s.Kind == "temperature" {
							return &h.Sensors[i]
						}
					}
					t.Fatalf("no sensor %q among %d", cpuName[v], len(h.Sensors))
					return nil
				}
				h := f.health(t)
				if s := cpu(h); s.Severity != bmc.SeverityInfo || s.Reading == nil || *s.Reading != 48 {
					t.Errorf("healthy: %+v, want info at 48 C", s)
				}
				for _, r := range h.Rollups {
					// iLO's capture is critical as captured (storage).
					if r.Severity == bmc.SeverityCritical && v != "hpe" {
						t.Errorf("healthy machine, critical rollup %+v", r)
					}
				}

				f.m.Overheat()
				h = f.health(t)
				s := cpu(h)
				if s.Severity != bmc.SeverityCritical || s.Reading == nil || *s.Reading != machine.OverheatReading {
					t.Errorf("overheated: %+v, want critical at %d C", s, machine.OverheatReading)
				}
				// (The threshold named in the detail is not checked: the
				// reader takes iDRAC's and XCC's null thresholds for 0.)
				if !strings.HasPrefix(s.Detail, "101 C") || !strings.Contains(s.Detail, "at or above upper") {
					t.Errorf("detail %q, want the reading against a threshold", s.Detail)
				}
				crit := map[string]bool{}
				for _, r := range h.Rollups {
					crit[strings.Fields(r.Name)[0]] = crit[strings.Fields(r.Name)[0]] || r.Severity == bmc.SeverityCritical
				}
				if !crit["system"] || !crit["chassis"] {
					t.Errorf("rollups %+v, want system and chassis critical", h.Rollups)
				}
				if h.Worst() != bmc.SeverityCritical {
					t.Errorf("worst %s", h.Worst())
				}
				if v == "hpe" {
					f.c.basic = true
					sys := f.c.do(t, "GET", "/redfish/v1/Systems/1", nil).json(t)
					agg := sys["Oem"].(map[string]any)["Hpe"].(map[string]any)["AggregateHealthStatus"].(map[string]any)
					if got := agg["Temperatures"].(map[string]any)["Status"].(map[string]any)["Health"]; got != "Critical" {
						t.Errorf("Oem.Hpe.AggregateHealthStatus.Temperatures health %v, want Critical", got)
					}
				}
			})
		}
	}
}

// TestTemperatureSlots pins which captured temperatures stand for the
// machine's, per vendor.
func TestTemperatureSlots(t *testing.T) {
	want := map[string][]string{
		"dell":       {"CPU1 Temp", "System Board Inlet Temp"},
		"hpe":        {"02-CPU 1", "01-Inlet Ambient"},
		"lenovo":     {"CPU 1 Temp", "Ambient Temp"},
		"supermicro": {"CPU1 Temp", "Inlet Temp"},
		"dmtf":       {"CPU1 Temp", "Chassis Intake Temp"},
	}
	for _, v := range vendorNames {
		t.Run(v, func(t *testing.T) {
			tr, err := loadTree(v)
			if err != nil {
				t.Fatal(err)
			}
			if len(tr.thermal) == 0 {
				t.Fatal("no Thermal resource found")
			}
			found := false
			for uri, slot := range tr.thermal {
				if slot.cpu == "" {
					continue
				}
				found = true
				if slot.cpu != want[v][0] || slot.inlet != want[v][1] {
					t.Errorf("%s: cpu %q inlet %q, want %q", uri, slot.cpu, slot.inlet, want[v])
				}
			}
			if !found {
				t.Error("no chassis has a CPU temperature")
			}
		})
	}
	if got := pickSlot([]capturedTemp{{Name: "CPU0", PhysicalContext: "CPU", Status: struct{ State string }{"Absent"}},
		{Name: "CPU1", PhysicalContext: "CPU"}, {Name: "Front Ambient", PhysicalContext: "SystemBoard"}}); got != (tempSlot{"CPU1", "Front Ambient"}) {
		t.Errorf("pickSlot skips absent sensors and finds ambient by name: %+v", got)
	}
}

// TestSensorsFollowPower: a CPU temperature cannot be read with the host
// off (the inlet can); Redfish says so the way BMCs do, and rmm's reader
// skips it.
func TestSensorsFollowPower(t *testing.T) {
	f := start(t, "dell")
	f.m.SetPower(false)
	for _, s := range f.health(t).Sensors {
		if s.Name == "CPU1 Temp" {
			t.Errorf("CPU temperature of an off host reported: %+v", s)
		}
		if s.Name == "System Board Inlet Temp" && (s.Reading == nil || *s.Reading != 23) {
			t.Errorf("inlet of an off host: %+v, want 23 C (a standby sensor)", s)
		}
	}
}
