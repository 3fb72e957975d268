package interop

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rmm-project/rmm/sim"
)

// TestInteropSimFleet checks rmm and the reference clients (ipmitool,
// ipmipower, ipmi-sel, redfishtool) agree on rmm's own simulated fleet,
// through the real rmm binary: the simulator is only a fair stand-in for a
// BMC if independent clients see what rmm sees.
func TestInteropSimFleet(t *testing.T) {
	f := newFleet(t, nil,
		fhost{name: "on1"},
		fhost{name: "off1", powerOff: true},
		fhost{name: "act1"},
		fhost{name: "ref1"},
		fhost{name: "panic1", scenarios: []sim.Scenario{sim.Panicked}},
		fhost{name: "rf-dell", protocols: "[redfish]", vendor: "dell"},
		fhost{name: "rf-hpe", protocols: "[redfish]", vendor: "hpe", powerOff: true},
	)
	ctx := context.Background()

	t.Run("power status agrees with ipmitool and ipmipower", func(t *testing.T) {
		t.Parallel()
		r := f.bin(ctx, "power", "status", "on1,off1", "-o", "json")
		if r.code != 0 {
			t.Fatalf("rmm power status: %s", r)
		}
		rows := powerRows(t, r)
		fp := ipmipowerStat(t, f.refTarget("on1"), f.refTarget("off1"))
		for name, want := range map[string]string{"on1": "on", "off1": "off"} {
			rmm, it, ip := rows[name].After, ipmitoolPower(t, f.refTarget(name)), fp[f.addr(name)]
			if rmm != want || it != want || ip != want {
				t.Errorf("%s: machine is %s; rmm says %q, ipmitool %q, ipmipower %q", name, want, rmm, it, ip)
			}
		}
	})

	t.Run("rmm power actions as ipmitool and ipmipower see them", func(t *testing.T) {
		t.Parallel()
		tg := f.refTarget("act1")
		m := f.host("act1").Machine
		for _, st := range []struct {
			args []string
			want string
		}{
			{[]string{"off", "act1", "--yes"}, "off"},
			{[]string{"on", "act1"}, "on"},
			{[]string{"cycle", "act1", "--yes", "--wait"}, "on"},
		} {
			r := f.bin(ctx, append([]string{"power"}, st.args...)...)
			if r.code != 0 {
				t.Fatalf("rmm power %v: %s", st.args, r)
			}
			it, ip := ipmitoolPower(t, tg), ipmipowerStat(t, tg)[tg.addr]
			if it != st.want || ip != st.want || m.PowerOn() != (st.want == "on") {
				t.Errorf("after rmm power %v: ipmitool %q, ipmipower %q, machine on=%v; want %s", st.args, it, ip, m.PowerOn(), st.want)
			}
		}
		if acts := m.Actions(); strings.Join(acts, ",") != "off,on,cycle" {
			t.Errorf("the machine received %v, want off, on, cycle", acts)
		}
	})

	t.Run("ipmitool and ipmipower change power, rmm reads it", func(t *testing.T) {
		t.Parallel()
		tg := f.refTarget("ref1")
		status := func() string {
			t.Helper()
			r := f.bin(ctx, "power", "status", "ref1", "-o", "json")
			return powerRows(t, r)["ref1"].After
		}
		if out, err := ipmitool(t, tg, "chassis", "power", "off"); err != nil {
			t.Fatalf("ipmitool power off: %v %s", err, out)
		}
		if s := status(); s != "off" {
			t.Errorf("after ipmitool power off, rmm says %q", s)
		}
		ipmipowerDo(t, tg, "--on")
		if s := status(); s != "on" {
			t.Errorf("after ipmipower --on, rmm says %q", s)
		}
	})

	t.Run("sel of a panicked host agrees with ipmitool and ipmi-sel", func(t *testing.T) {
		t.Parallel()
		tg := f.refTarget("panic1")
		it := ipmitoolSEL(t, tg)
		fi := ipmiSEL(t, tg)
		r := f.bin(ctx, "sel", "panic1", "-o", "json")
		if r.code != 0 {
			t.Fatalf("rmm sel: %s", r)
		}
		h := selHosts(t, r)["panic1"]
		for _, d := range compareSEL(it, h.Entries) {
			t.Errorf("rmm sel and ipmitool sel elist disagree: %s", d)
		}
		if len(fi) != len(it) || len(fi) == 0 || !strings.Contains(fi[0], "OS Critical Stop") {
			t.Errorf("ipmi-sel lists %d records, ipmitool %d:\n%s", len(fi), len(it), strings.Join(fi, "\n"))
		}
		if len(h.Entries) == 0 || !h.Entries[0].KernelPanic {
			t.Errorf("rmm sel does not flag the kernel panic: %+v", h.Entries)
		}
		if t.Failed() {
			t.Logf("rmm:\n%s\nipmitool:\n%s\nipmi-sel:\n%s", r.stdout, strings.Join(it, "\n"), strings.Join(fi, "\n"))
		}
	})

	t.Run("redfishtool reads the power state rmm reads over Redfish", func(t *testing.T) {
		t.Parallel()
		bin := needTool(t, "redfishtool", "redfishtool")
		cfg := filepath.Join(t.TempDir(), "redfishtool.json")
		creds, _ := json.Marshal(map[string]string{"user": simUser, "password": simPassword})
		if err := os.WriteFile(cfg, creds, 0o600); err != nil {
			t.Fatal(err)
		}
		r := f.bin(ctx, "power", "status", "rf-dell,rf-hpe", "-o", "json")
		if r.code != 0 {
			t.Fatalf("rmm power status: %s", r)
		}
		rows := powerRows(t, r)
		for name, want := range map[string]string{"rf-dell": "On", "rf-hpe": "Off"} {
			cctx, cancel := context.WithTimeout(ctx, time.Minute)
			cmd := exec.CommandContext(cctx, bin, "-n", "-S", "Always", "-A", "Session", "-T", "10",
				"-r", f.host(name).RedfishAddr().String(), "-c", cfg, "Systems", "-F", "-P", "PowerState", "get")
			cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "LANG=C.UTF-8"}
			out, err := cmd.CombinedOutput()
			cancel()
			if err != nil || !strings.Contains(string(out), `"`+want+`"`) {
				t.Errorf("%s: redfishtool PowerState: %v\n%s", name, err, out)
			}
			if got := rows[name]; got.After != strings.ToLower(want) || got.Protocol != "redfish" {
				t.Errorf("%s: redfishtool says %s, rmm %+v", name, want, got)
			}
		}
	})
}
