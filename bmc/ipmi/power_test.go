package ipmi

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/rmm-project/rmm/bmc"
	"github.com/rmm-project/rmm/bmc/ipmi/internal/testbmc"
)

// TestPowerSet checks bmc.PowerAction's documented semantics: which
// Chassis Control command (if any) reaches the BMC for each verb and power
// state, and what power state results.
func TestPowerSet(t *testing.T) {
	for _, tc := range []struct {
		action   string
		startOff bool
		controls []uint8 // Chassis Control values the BMC must receive
		wantOn   bool
		wantErr  error
	}{
		{"on", false, nil, true, nil},
		{"on", true, []uint8{1}, true, nil},
		{"off", false, []uint8{0}, false, nil},
		{"off", true, nil, false, nil},
		{"cycle", false, []uint8{2}, true, nil},
		{"cycle", true, []uint8{1}, true, nil},
		{"reset", false, []uint8{3}, true, nil},
		{"reset", true, nil, false, bmc.ErrUnsupported},
		{"soft", false, []uint8{5}, false, nil},
		{"soft", true, nil, false, nil},
		{"diag", false, nil, true, bmc.ErrUnsupported},
	} {
		state := "on"
		if tc.startOff {
			state = "off"
		}
		t.Run(tc.action+" when "+state, func(t *testing.T) {
			b := startBMC(t, testbmc.Options{PowerOff: tc.startOff})
			p := open(t, b, 17)
			ok, err := p.PowerSet(ctx(t), tc.action)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("PowerSet(%s): ok=%v err=%v, want %v", tc.action, ok, err, tc.wantErr)
			}
			if err == nil && !ok {
				t.Errorf("PowerSet(%s) returned ok=false without error", tc.action)
			}
			if tc.action == "reset" && err != nil {
				if h := bmc.Hint(bmc.Target{Name: "db1"}.Wrap("power reset", err)); !strings.Contains(h, "power on") {
					t.Errorf("hint %q, want it to suggest power on", h)
				}
			}
			if got := b.Chassis.Controls(); !slices.Equal(got, tc.controls) {
				t.Errorf("chassis control commands %v, want %v", got, tc.controls)
			}
			if on := b.PowerOn(); on != tc.wantOn {
				t.Errorf("power on=%v afterwards, want %v", on, tc.wantOn)
			}
			st, err := p.PowerStateGet(ctx(t))
			if err != nil || (st == "on") != tc.wantOn {
				t.Errorf("PowerStateGet %q, %v; want on=%v", st, err, tc.wantOn)
			}
		})
	}
}
