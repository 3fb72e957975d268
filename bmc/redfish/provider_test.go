package redfish

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rmm-project/rmm/bmc"
	"github.com/rmm-project/rmm/secret"
	"github.com/rmm-project/rmm/sim/machine"
	"github.com/rmm-project/rmm/sim/redfishsim"
)

func TestLoginLogout(t *testing.T) {
	t.Parallel()
	for _, v := range vendors {
		t.Run(v.name, func(t *testing.T) {
			t.Parallel()
			s := newSim(t, v.name)
			p := s.provider(t)
			ctx := testCtx(t, 10*time.Second)
			if err := p.Open(ctx); err != nil {
				t.Fatalf("open: %v", err)
			}
			if n := s.srv.OpenSessions(); n != 1 {
				t.Fatalf("sessions after open = %d, want 1", n)
			}
			if p.basic {
				t.Fatal("used Basic auth although the BMC offers sessions")
			}
			if _, err := p.PowerStateGet(ctx); err != nil {
				t.Fatalf("power status: %v", err)
			}
			if err := p.Close(ctx); err != nil {
				t.Fatalf("close: %v", err)
			}
			if n := s.srv.OpenSessions(); n != 0 {
				t.Fatalf("sessions after close = %d, want 0", n)
			}
			if err := p.Close(ctx); err != nil {
				t.Fatalf("second close: %v", err)
			}
			for _, r := range s.srv.Requests() {
				if strings.Contains(r.Body, s.target.Password.Reveal()) {
					t.Fatalf("the simulator logged the password in %s %s", r.Method, r.Path)
				}
			}
		})
	}
}

func TestCloseAfterCancel(t *testing.T) {
	t.Parallel()
	s := newSim(t, "dell")
	p := s.provider(t)
	ctx, cancel := context.WithCancel(context.Background())
	if err := p.Open(ctx); err != nil {
		t.Fatal(err)
	}
	cancel() // Ctrl-C
	if err := p.Close(ctx); err != nil {
		t.Fatalf("close with a cancelled context: %v", err)
	}
	if n := s.srv.OpenSessions(); n != 0 {
		t.Fatalf("sessions = %d, want 0", n)
	}
}

func TestBasicAuthFallback(t *testing.T) {
	t.Parallel()
	s := newSim(t, "supermicro")
	s.srv.SetFaults(redfishsim.Faults{NoSessions: true})
	p := s.open(t)
	if !p.basic {
		t.Fatal("want Basic auth when the service root offers no sessions")
	}
	st, err := p.PowerStateGet(testCtx(t, 5*time.Second))
	if err != nil || st != "on" {
		t.Fatalf("power status = %q, %v", st, err)
	}
	for _, r := range s.srv.Requests() {
		if r.Path != "/redfish/v1/" && r.Auth != "basic" {
			t.Errorf("%s %s sent without Basic credentials", r.Method, r.Path)
		}
	}

	// Wrong Basic credentials fail in Open, not at the first command.
	s.target.Password = secret.New("wrong")
	if err := s.provider(t).Open(testCtx(t, 5*time.Second)); !errors.Is(err, bmc.ErrAuth) {
		t.Fatalf("wrong Basic credentials: %v, want ErrAuth", err)
	}
}

func TestWrongCredentials(t *testing.T) {
	t.Parallel()
	for _, v := range vendors {
		t.Run(v.name, func(t *testing.T) {
			t.Parallel()
			s := newSim(t, v.name)
			s.target.Password = secret.New("not-the-password")
			err := s.provider(t).Open(testCtx(t, 5*time.Second))
			if !errors.Is(err, bmc.ErrAuth) {
				t.Fatalf("err = %v, want ErrAuth", err)
			}
			if strings.Contains(err.Error(), "not-the-password") {
				t.Fatal("the error shows the password")
			}
			if n := s.srv.OpenSessions(); n != 0 {
				t.Fatalf("sessions = %d", n)
			}
		})
	}
}

func TestPower(t *testing.T) {
	t.Parallel()
	type step struct {
		action   bmc.PowerAction
		startOn  bool
		wantOn   bool
		wantSent []string // reset types posted
		wantMach []string // machine actions
		wantErr  error
	}
	for _, v := range vendors {
		steps := []step{
			{action: bmc.ActionOn, startOn: false, wantOn: true, wantSent: []string{"On"}, wantMach: []string{"on"}},
			{action: bmc.ActionOn, startOn: true, wantOn: true}, // idempotent: nothing sent
			{action: bmc.ActionOff, startOn: true, wantOn: false, wantSent: []string{"ForceOff"}, wantMach: []string{"off"}},
			{action: bmc.ActionOff, startOn: false, wantOn: false},
			{action: bmc.ActionSoft, startOn: true, wantOn: false, wantSent: []string{"GracefulShutdown"}, wantMach: []string{"soft"}},
			{action: bmc.ActionSoft, startOn: false, wantOn: false},
			{action: bmc.ActionReset, startOn: true, wantOn: true, wantSent: []string{"ForceRestart"}, wantMach: []string{"reset"}},
			{action: bmc.ActionReset, startOn: false, wantOn: false, wantErr: bmc.ErrUnsupported},
			{action: bmc.ActionCycle, startOn: true, wantOn: true, wantSent: []string{v.cycle}, wantMach: []string{v.cycleAction}},
			{action: bmc.ActionCycle, startOn: false, wantOn: true, wantSent: []string{"On"}, wantMach: []string{"on"}},
		}
		for _, st := range steps {
			name := v.name + "/" + string(st.action) + "-from-" + map[bool]string{true: "on", false: "off"}[st.startOn]
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				s := newSim(t, v.name)
				s.m.SetPower(st.startOn)
				before := len(s.m.Actions())
				p := s.open(t)
				ctx := testCtx(t, 10*time.Second)

				state, err := p.PowerStateGet(ctx)
				if err != nil {
					t.Fatalf("status: %v", err)
				}
				if want := map[bool]string{true: "on", false: "off"}[st.startOn]; state != want {
					t.Fatalf("status = %q, want %q", state, want)
				}
				ok, err := p.PowerSet(ctx, string(st.action))
				if st.wantErr != nil {
					if !errors.Is(err, st.wantErr) {
						t.Fatalf("err = %v, want %v", err, st.wantErr)
					}
					if bmc.Hint(s.target.Wrap("power", err)) == "" {
						t.Error("no hint on the error")
					}
				} else if err != nil || !ok {
					t.Fatalf("PowerSet(%s) = %v, %v", st.action, ok, err)
				}
				waitPower(t, s.m, st.wantOn)
				if got := s.srv.ResetTypes(); !slices.Equal(got, st.wantSent) {
					t.Errorf("reset types sent = %v, want %v", got, st.wantSent)
				}
				if got := s.m.Actions()[before:]; !slices.Equal(got, st.wantMach) {
					t.Errorf("machine actions = %v, want %v", got, st.wantMach)
				}
				state, err = p.PowerStateGet(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if want := map[bool]string{true: "on", false: "off"}[st.wantOn]; state != want {
					t.Errorf("status after = %q, want %q", state, want)
				}
			})
		}
	}
}

// TestResetTypesNeverOutsideAllowed runs every action on every vendor and
// checks each reset type sent against what the tree allows (Supermicro's
// only in its ActionInfo resource).
func TestResetTypesNeverOutsideAllowed(t *testing.T) {
	t.Parallel()
	allowed := map[string][]string{
		"dell":       {"On", "ForceOff", "ForceRestart", "GracefulRestart", "GracefulShutdown", "PushPowerButton", "Nmi", "PowerCycle"},
		"hpe":        {"On", "ForceOff", "GracefulShutdown", "ForceRestart", "Nmi", "PushPowerButton", "GracefulRestart"},
		"lenovo":     {"On", "Nmi", "GracefulShutdown", "GracefulRestart", "ForceOn", "ForceOff", "ForceRestart"},
		"supermicro": {"On", "ForceOff", "GracefulShutdown", "GracefulRestart", "ForceRestart", "Nmi", "ForceOn", "PowerCycle"},
		"dmtf":       {"On", "ForceOff", "GracefulShutdown", "GracefulRestart", "ForceRestart", "Nmi", "ForceOn", "PushPowerButton"},
	}
	for _, v := range vendors {
		t.Run(v.name, func(t *testing.T) {
			t.Parallel()
			s := newSim(t, v.name)
			p := s.open(t)
			ctx := testCtx(t, 20*time.Second)
			if got := p.sysOrFail(t).allowed; !slices.Equal(got, allowed[v.name]) {
				t.Errorf("allowed = %v, want %v", got, allowed[v.name])
			}
			for _, a := range []bmc.PowerAction{bmc.ActionCycle, bmc.ActionOff, bmc.ActionCycle, bmc.ActionSoft, bmc.ActionOn, bmc.ActionReset, bmc.ActionCycle} {
				if _, err := p.PowerSet(ctx, string(a)); err != nil {
					t.Fatalf("%s: %v", a, err)
				}
				waitPower(t, s.m, a.Expected() == bmc.PowerOn)
			}
			for _, rt := range s.srv.ResetTypes() {
				if !slices.Contains(allowed[v.name], rt) {
					t.Errorf("sent %s, which the BMC does not allow", rt)
				}
			}
			for _, r := range s.srv.Requests() {
				if r.Status == 400 {
					t.Errorf("%s %s was refused", r.Method, r.Path)
				}
			}
		})
	}
}

func (p *Provider) sysOrFail(t *testing.T) *systemInfo {
	t.Helper()
	p.g.use(testCtx(t, 5*time.Second))
	si, err := p.system()
	if err != nil {
		t.Fatal(err)
	}
	return si
}

// TestCycleWithoutPowerCycleOrRestart drives the last fallback (ForceOff,
// then On) on a system whose allowed list was narrowed.
func TestCycleWithoutPowerCycleOrRestart(t *testing.T) {
	t.Parallel()
	s := newSim(t, "hpe")
	p := s.open(t)
	si := p.sysOrFail(t)
	si.allowed = []string{"On", "ForceOff"} // as a BMC listing only these would
	before := len(s.m.Actions())
	if ok, err := p.PowerSet(testCtx(t, 10*time.Second), "cycle"); !ok || err != nil {
		t.Fatalf("cycle: %v %v", ok, err)
	}
	if got := s.srv.ResetTypes(); !slices.Equal(got, []string{"ForceOff", "On"}) {
		t.Fatalf("sent %v, want ForceOff then On", got)
	}
	if got := s.m.Actions()[before:]; !slices.Equal(got, []string{"off", "on"}) {
		t.Fatalf("machine saw %v", got)
	}
	si.allowed = []string{"On"}
	if _, err := p.PowerSet(testCtx(t, 10*time.Second), "cycle"); !errors.Is(err, bmc.ErrUnsupported) {
		t.Fatalf("cycle with only On allowed: %v, want ErrUnsupported", err)
	}
	if n := len(s.srv.ResetTypes()); n != 2 {
		t.Fatalf("a cycle that cannot be done sent %d more requests", n-2)
	}
}

func TestIdentity(t *testing.T) {
	t.Parallel()
	for _, v := range vendors {
		t.Run(v.name, func(t *testing.T) {
			t.Parallel()
			s := newSim(t, v.name)
			p := s.open(t)
			id, err := p.Identity(testCtx(t, 5*time.Second))
			if err != nil {
				t.Fatal(err)
			}
			want := bmc.Identity{UUID: s.m.ID.UUID, Serial: s.m.ID.Serial, Vendor: v.manufacturer, Model: v.model, Firmware: v.firmware}
			if id != want {
				t.Fatalf("identity = %+v\nwant %+v", id, want)
			}
			if err := (bmc.Identity{UUID: strings.ToUpper(s.m.ID.UUID)}).Mismatch(id); err != nil {
				t.Fatalf("identity check: %v", err)
			}
		})
	}
}

func TestSEL(t *testing.T) {
	t.Parallel()
	for _, v := range vendors {
		t.Run(v.name, func(t *testing.T) {
			t.Parallel()
			s := newSim(t, v.name)
			s.m.AddSEL(machine.SELRecord{Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), RecordType: 2,
				SensorType: 0x01, SensorNum: 7, EventType: 0x01, Message: "Inlet temperature above upper critical", Severity: "Warning"})
			s.m.Panic()
			if s.srv.SELService() != v.sel {
				t.Fatalf("simulator shows the SEL at %s, test expects %s", s.srv.SELService(), v.sel)
			}
			p := s.open(t)
			es, err := p.SEL(testCtx(t, 10*time.Second))
			if err != nil {
				t.Fatal(err)
			}
			mine := len(s.m.SEL())
			if len(es) != v.captured+mine {
				t.Fatalf("%d entries, want %d captured + %d from the machine", len(es), v.captured, mine)
			}
			var panics []bmc.SELEntry
			for i, e := range es {
				if e.Source != v.sel {
					t.Fatalf("entry %s from %s, want the event log %s", e.ID, e.Source, v.sel)
				}
				if i > 0 && e.Time.Before(es[i-1].Time) {
					t.Fatalf("not oldest first: %s (%s) after %s (%s)", e.ID, e.Time, es[i-1].ID, es[i-1].Time)
				}
				if e.Time.IsZero() {
					t.Errorf("entry %s has no time", e.ID)
				}
				if e.IsKernelPanic() {
					panics = append(panics, e)
				}
			}
			if len(panics) != 1 {
				t.Fatalf("%d kernel panic entries, want 1: %+v", len(panics), panics)
			}
			pe := panics[0]
			if pe.Severity != bmc.SeverityCritical || pe.SensorTypeCode != 0x20 || pe.SensorType != "OS Critical Stop" ||
				!strings.Contains(pe.Message, "critical stop") {
				t.Fatalf("panic entry = %+v", pe)
			}
			last := es[len(es)-1]
			if !strings.HasPrefix(last.Message, "[OS-0001] Linux kernel panic") && !strings.HasPrefix(last.Message, "Linux kernel panic") {
				t.Fatalf("newest entry is %q, want the panic string record", last.Message)
			}
			var warn *bmc.SELEntry
			for i := range es {
				if strings.Contains(es[i].Message, "Inlet temperature") {
					warn = &es[i]
				}
			}
			if warn == nil || warn.Severity != bmc.SeverityWarning {
				t.Fatalf("temperature entry = %+v", warn)
			}
		})
	}
}

func TestClearSEL(t *testing.T) {
	t.Parallel()
	for _, v := range vendors {
		t.Run(v.name, func(t *testing.T) {
			t.Parallel()
			s := newSim(t, v.name)
			s.m.Panic()
			p := s.open(t)
			ctx := testCtx(t, 10*time.Second)
			if err := p.ClearSEL(ctx); err != nil {
				t.Fatal(err)
			}
			if got := s.srv.ClearedLogs(); !slices.Equal(got, []string{v.sel}) {
				t.Fatalf("cleared %v, want only %s", got, v.sel)
			}
			if s.m.SELClears() != 1 || len(s.m.SEL()) != 0 {
				t.Fatalf("machine SEL not cleared: %d clears, %d records", s.m.SELClears(), len(s.m.SEL()))
			}
			es, err := p.SEL(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if len(es) != 0 {
				t.Fatalf("%d entries after clear", len(es))
			}
		})
	}
}

func TestHealth(t *testing.T) {
	t.Parallel()
	tests := []struct {
		vendor      string
		hideLegacy  bool
		wantWorst   bmc.Severity
		wantRollups map[string]bmc.Severity
		wantDetail  string // in every rollup worse than the sensors
		minSensors  int
		wantKinds   []string
	}{
		{vendor: "hpe", wantWorst: bmc.SeverityCritical,
			wantRollups: map[string]bmc.Severity{"system 1": bmc.SeverityCritical, "chassis 1": bmc.SeverityCritical},
			wantDetail:  "Oem.Hpe.AggregateHealthStatus.Storage: Critical", minSensors: 50, wantKinds: []string{"temperature", "fan", "power"}},
		{vendor: "dell", wantWorst: bmc.SeverityInfo,
			wantRollups: map[string]bmc.Severity{"system System.Embedded.1": bmc.SeverityInfo, "chassis System.Embedded.1": bmc.SeverityInfo, "chassis Enclosure.Internal.0-1": bmc.SeverityInfo},
			minSensors:  60, wantKinds: []string{"temperature", "fan", "power", "voltage"}},
		{vendor: "dell", hideLegacy: true, wantWorst: bmc.SeverityInfo, minSensors: 8, wantKinds: []string{"temperature", "fan", "power"}},
		{vendor: "lenovo", wantWorst: bmc.SeverityInfo, minSensors: 20, wantKinds: []string{"temperature", "fan", "power", "voltage"}},
		{vendor: "supermicro", wantWorst: bmc.SeverityInfo, minSensors: 50, wantKinds: []string{"temperature", "fan", "power", "voltage"}},
		{vendor: "dmtf", wantWorst: bmc.SeverityWarning,
			wantRollups: map[string]bmc.Severity{"system 437XR1138R2": bmc.SeverityWarning, "chassis 1U": bmc.SeverityInfo},
			minSensors:  5, wantKinds: []string{"temperature", "fan", "power", "voltage"}},
		{vendor: "dmtf", hideLegacy: true, wantWorst: bmc.SeverityWarning, minSensors: 5, wantKinds: []string{"temperature", "fan", "power", "voltage", "current"}},
	}
	for _, tc := range tests {
		name := tc.vendor
		if tc.hideLegacy {
			name += "/no-legacy-thermal-power"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			s := newSim(t, tc.vendor)
			s.srv.SetFaults(redfishsim.Faults{HideLegacy: tc.hideLegacy})
			p := s.open(t)
			h, err := p.Health(testCtx(t, 20*time.Second))
			if err != nil {
				t.Fatal(err)
			}
			if got := h.Worst(); got != tc.wantWorst {
				t.Errorf("worst = %s, want %s", got, tc.wantWorst)
			}
			rollups := map[string]bmc.HealthItem{}
			for _, r := range h.Rollups {
				rollups[r.Name] = r
			}
			for name, sev := range tc.wantRollups {
				if r, ok := rollups[name]; !ok || r.Severity != sev {
					t.Errorf("rollup %q = %+v, want %s", name, r, sev)
				}
			}
			worstSensor := bmc.SeverityInfo
			kinds := map[string]bool{}
			for _, sn := range h.Sensors {
				kinds[sn.Kind] = true
				if sn.Severity.Rank() > worstSensor.Rank() {
					worstSensor = sn.Severity
				}
				if sn.Severity != bmc.SeverityInfo && sn.Detail == "" {
					t.Errorf("sensor %s is %s without a detail", sn.Name, sn.Severity)
				}
			}
			for _, r := range h.Rollups {
				if r.Severity.Rank() > worstSensor.Rank() {
					if r.Detail == "" || (tc.wantDetail != "" && !strings.Contains(r.Detail, tc.wantDetail)) {
						t.Errorf("rollup %s is %s, sensors at most %s; detail %q", r.Name, r.Severity, worstSensor, r.Detail)
					}
				}
			}
			if len(h.Sensors) < tc.minSensors {
				t.Errorf("%d sensors, want at least %d", len(h.Sensors), tc.minSensors)
			}
			for _, k := range tc.wantKinds {
				if !kinds[k] {
					t.Errorf("no %s sensor (have %v)", k, kinds)
				}
			}
			if tc.hideLegacy {
				for _, r := range s.srv.Requests() {
					if strings.HasSuffix(r.Path, "/Thermal") || strings.HasSuffix(r.Path, "/Power") {
						t.Errorf("read %s although the chassis no longer links it", r.Path)
					}
				}
			}
		})
	}
}

func TestConsoleInfo(t *testing.T) {
	t.Parallel()
	type tr = bmc.ConsoleTransport
	tests := map[string][]tr{
		"dell": {
			{Kind: "ssh", Enabled: true, Where: "/redfish/v1/Managers/iDRAC.Embedded.1#CommandShell"},
			{Kind: "ipmi-sol", Enabled: true, Where: "/redfish/v1/Managers/iDRAC.Embedded.1#CommandShell"},
		},
		"hpe": {
			{Kind: "ssh", Enabled: true, Where: "/redfish/v1/Managers/1#SerialConsole"},
			{Kind: "ipmi-sol", Enabled: true, Where: "/redfish/v1/Managers/1#SerialConsole"},
			{Kind: "ssh", Enabled: true, Where: "/redfish/v1/Managers/1#CommandShell"},
		},
		"lenovo": {
			{Kind: "ipmi-sol", Enabled: true, Where: "/redfish/v1/Managers/1#SerialConsole"},
			{Kind: "ssh", Enabled: true, Where: "/redfish/v1/Managers/1#SerialConsole"},
			{Kind: "ssh", Enabled: true, Where: "/redfish/v1/Managers/1#CommandShell"},
		},
		"supermicro": {
			{Kind: "ipmi-sol", Enabled: true, Port: 623, Where: "/redfish/v1/Systems/1#SerialConsole/IPMI"},
			{Kind: "ssh", Enabled: true, Port: 22, EntryCommand: "cd system1/sol1; start", Where: "/redfish/v1/Systems/1#SerialConsole/SSH"},
			{Kind: "ssh", Enabled: true, Where: "/redfish/v1/Managers/1#CommandShell"},
		},
		"dmtf": {
			{Kind: "telnet", Enabled: true, Where: "/redfish/v1/Managers/BMC#SerialConsole"},
			{Kind: "ssh", Enabled: true, Where: "/redfish/v1/Managers/BMC#SerialConsole"},
			{Kind: "ipmi-sol", Enabled: true, Where: "/redfish/v1/Managers/BMC#SerialConsole"},
			{Kind: "telnet", Enabled: true, Where: "/redfish/v1/Managers/BMC#CommandShell"},
			{Kind: "ssh", Enabled: true, Where: "/redfish/v1/Managers/BMC#CommandShell"},
		},
	}
	for _, v := range vendors {
		t.Run(v.name, func(t *testing.T) {
			t.Parallel()
			s := newSim(t, v.name)
			p := s.open(t)
			ci, err := p.ConsoleInfo(testCtx(t, 5*time.Second))
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(ci.Transports, tests[v.name]) {
				t.Fatalf("transports:\n got %+v\nwant %+v", ci.Transports, tests[v.name])
			}
		})
	}
}
