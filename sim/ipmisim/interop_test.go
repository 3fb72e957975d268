package ipmisim

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rmm-project/rmm/bmc"
	"github.com/rmm-project/rmm/bmc/ipmi"
	"github.com/rmm-project/rmm/secret"
	"github.com/rmm-project/rmm/sim/machine"
)

// needTool finds an interop peer. Without it the test skips, loudly; with
// RMM_REQUIRE_INTEROP=1 (CI) a missing peer is a failure.
func needTool(t *testing.T, name, pkg string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err == nil {
		return path
	}
	msg := fmt.Sprintf("%s not found (Debian package %s): interop with %s is NOT tested", name, pkg, name)
	if os.Getenv("RMM_REQUIRE_INTEROP") == "1" {
		t.Fatalf("%s, and RMM_REQUIRE_INTEROP=1", msg)
	}
	t.Skipf("SKIP: %s; set RMM_REQUIRE_INTEROP=1 to make this a failure", msg)
	return ""
}

// ipmitool runs ipmitool against b with the password in IPMI_PASSWORD
// (-E), never on the command line.
func ipmitool(t *testing.T, b *BMC, suite int, pass string, args ...string) (string, error) {
	t.Helper()
	bin := needTool(t, "ipmitool", "ipmitool")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	full := append([]string{"-I", "lanplus", "-C", fmt.Sprint(suite), "-H", b.Addr().Addr().String(),
		"-p", fmt.Sprint(b.Addr().Port()), "-U", testUser, "-E", "-N", "1", "-R", "2"}, args...)
	cmd := exec.CommandContext(ctx, bin, full...)
	cmd.Env = append(os.Environ(), "IPMI_PASSWORD="+pass)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func TestIPMItool(t *testing.T) {
	needTool(t, "ipmitool", "ipmitool")
	for _, suite := range []int{3, 17} {
		t.Run(fmt.Sprintf("suite %d", suite), func(t *testing.T) {
			b := startBMC(t, nil)
			m := b.Machine()
			run := func(args ...string) string {
				t.Helper()
				out, err := ipmitool(t, b, suite, testPass, args...)
				if err != nil {
					t.Fatalf("ipmitool %s: %v\n%s", strings.Join(args, " "), err, out)
				}
				return out
			}
			status := func() string {
				t.Helper()
				return strings.TrimSpace(run("chassis", "power", "status"))
			}

			if got := status(); got != "Chassis Power is on" {
				t.Fatalf("status %q", got)
			}
			if out := run("chassis", "power", "cycle"); !strings.Contains(out, "Chassis Power Control: Cycle") {
				t.Fatalf("cycle: %q", out)
			}
			if acts := m.Actions(); len(acts) != 1 || acts[0] != "cycle" {
				t.Fatalf("machine saw %v", acts)
			}
			eventually(t, "cycle completes", 3*time.Second, m.PowerOn)
			if got := status(); got != "Chassis Power is on" {
				t.Fatalf("status after cycle %q", got)
			}
			run("chassis", "power", "off")
			if got := status(); got != "Chassis Power is off" || m.PowerOn() {
				t.Fatalf("status after off %q, machine on %v", got, m.PowerOn())
			}
			if out, err := ipmitool(t, b, suite, testPass, "chassis", "power", "reset"); err == nil {
				t.Fatalf("reset of an off host succeeded: %s", out)
			}

			m.Panic()
			out := run("sel", "elist")
			lines := strings.Split(strings.TrimSpace(out), "\n")
			if len(lines) != len(m.SEL()) {
				t.Fatalf("ipmitool lists %d entries, the machine has %d:\n%s", len(lines), len(m.SEL()), out)
			}
			if !strings.HasSuffix(lines[0], "| OS Critical Stop OS Stop | Run-time critical stop | Asserted") {
				t.Errorf("panic entry: %q", lines[0])
			}
			if !strings.Contains(lines[1], "Linux kernel panic: Fatal excep") {
				t.Errorf("panic string entry: %q", lines[1])
			}

			if out := run("mc", "guid"); !strings.Contains(out, "System GUID   : "+m.ID.GUID+"\n") {
				t.Errorf("mc guid prints\n%s\nwant %s", out, m.ID.GUID)
			}
			m.Overheat()
			if out := run("sdr"); !regexpLine(out, "CPU Temp", "101 degrees C", "cr") {
				t.Errorf("sdr after overheat:\n%s", out)
			}

			run("sel", "clear")
			if len(m.SEL()) != 0 {
				t.Errorf("sel clear left %d entries", len(m.SEL()))
			}
			if st := b.Stats(); st.SessionsOpen != 0 || st.SessionsOpened == 0 || st.SessionsClosed != st.SessionsOpened {
				t.Errorf("ipmitool left sessions: %+v", st)
			}
		})
	}
	t.Run("wrong password", func(t *testing.T) {
		b := startBMC(t, nil)
		out, err := ipmitool(t, b, 3, "wrong-password", "chassis", "power", "status")
		if err == nil {
			t.Fatalf("ipmitool got in with a wrong password:\n%s", out)
		}
		if st := b.Stats(); st.SessionsOpened != 0 {
			t.Fatalf("wrong password opened a session: %+v", st)
		}
	})
	t.Run("sol-busy", func(t *testing.T) {
		b := startBMC(t, func(c *Config) { c.SOLBusy = true })
		out, _ := ipmitool(t, b, 3, testPass, "sol", "activate")
		if !strings.Contains(out, "SOL payload already active on another session") {
			t.Fatalf("sol activate on a busy SOL:\n%s", out)
		}
		if out, err := ipmitool(t, b, 3, testPass, "sol", "deactivate"); err != nil {
			t.Fatalf("sol deactivate (takeover): %v\n%s", err, out)
		}
		if st := b.Stats(); st.SOLPhantom || st.SessionsOpen != 0 {
			t.Fatalf("after takeover: %+v", st)
		}
	})
}

// regexpLine reports whether a line of out has every field, in order,
// between '|' separators.
func regexpLine(out string, fields ...string) bool {
	for _, line := range strings.Split(out, "\n") {
		parts := strings.Split(line, "|")
		if len(parts) < len(fields) {
			continue
		}
		ok := true
		for i, f := range fields {
			if strings.TrimSpace(parts[i]) != f {
				ok = false
				break
			}
		}
		if ok {
			return true
		}
	}
	return false
}

func TestFreeIPMISel(t *testing.T) {
	bin := needTool(t, "ipmi-sel", "freeipmi-tools")
	b := startBMC(t, nil)
	b.Machine().Panic()

	// The password goes in a config file, not on the command line.
	dir := t.TempDir()
	conf := filepath.Join(dir, "freeipmi.conf")
	if err := os.WriteFile(conf, []byte("username "+testUser+"\npassword "+testPass+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	run := func() string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, bin, "--config-file", conf, "-D", "LAN_2_0",
			"-h", b.Addr().String(), "--sdr-cache-directory", dir)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("ipmi-sel: %v\n%s", err, out)
		}
		return string(out)
	}
	for i := range 2 { // the second run reads FreeIPMI's SDR cache, which must still be valid
		out := run()
		if !strings.Contains(out, "| OS Stop    | OS Critical Stop | Run-time Critical Stop") {
			t.Fatalf("run %d: ipmi-sel output:\n%s", i+1, out)
		}
	}
	if st := b.Stats(); st.SessionsOpen != 0 {
		t.Fatalf("ipmi-sel left sessions: %+v", st)
	}
}

// IPMI v1.5 ("-I lan", MD5) sessions are served by go-ipmi's BMC and
// counted apart from RMCP+ ones.
func TestIPMItoolV15(t *testing.T) {
	bin := needTool(t, "ipmitool", "ipmitool")
	b := startBMC(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "-I", "lan", "-H", b.Addr().Addr().String(), "-p", fmt.Sprint(b.Addr().Port()),
		"-U", testUser, "-E", "chassis", "power", "status")
	cmd.Env = append(os.Environ(), "IPMI_PASSWORD="+testPass)
	out, err := cmd.CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "Chassis Power is on" {
		t.Fatalf("ipmitool -I lan: %v\n%s", err, out)
	}
	if n := b.OpenSessions(); n != 0 {
		t.Fatalf("%d sessions left", n)
	}
}

// TestIdentityMatchesIpmitool serves machines with several GUIDs and
// compares ipmitool's "mc guid" and "fru print 0" with what rmm's IPMI
// provider reports: GUID as ipmitool prints it, UUID that string when it
// is dashed, and the FRU serial. Where the simulator's layout reads back
// (every GUID but the last), that is the machine's own UUID: the value its
// Redfish side reports.
func TestIdentityMatchesIpmitool(t *testing.T) {
	needTool(t, "ipmitool", "ipmitool")
	var ids []machine.Identity
	for _, n := range []string{"db1", "db2", "web-17", "rack4-u12", "gpu0042"} {
		ids = append(ids, machine.DerivedIdentity(n))
	}
	for _, g := range []string{
		"0f23fa4c-2d1e-11f0-9a07-b0a1c2d3e4f5", // time-based, 2025
		"12345678-9abc-4def-3456-56789abcdef0", // pre-RFC 4122 variant: SMBIOS layout
		"00112233-4455-6677-8899-aabbccddeeff", // version 6: ipmitool prints hex digits
	} {
		ids = append(ids, machine.Identity{GUID: g, UUID: g, Serial: "SN-" + g[:8]})
	}
	for _, id := range ids {
		t.Run(id.GUID, func(t *testing.T) {
			b := startBMC(t, func(c *Config) {
				c.Machine.Close()
				c.Machine = machine.New(c.Machine.Name, id)
				t.Cleanup(c.Machine.Close)
			})
			out, err := ipmitool(t, b, 17, testPass, "mc", "guid")
			if err != nil {
				t.Fatalf("ipmitool mc guid: %v\n%s", err, out)
			}
			line := field(out, "System GUID")
			out, err = ipmitool(t, b, 17, testPass, "fru", "print", "0")
			if err != nil {
				t.Fatalf("ipmitool fru print: %v\n%s", err, out)
			}
			serial := field(out, "Product Serial")

			p, err := ipmi.New(bmc.Target{Name: "t", Addr: b.Addr().Addr(), IPMIPort: b.Addr().Port(),
				Username: testUser, Password: secret.New(testPass)})
			if err != nil {
				t.Fatal(err)
			}
			ctx := ctxT(t, 20*time.Second)
			if err := p.Open(ctx); err != nil {
				t.Fatal(err)
			}
			got, err := p.(bmc.IdentityReader).Identity(ctx)
			_ = p.Close(ctx)
			if err != nil {
				t.Fatal(err)
			}
			wantUUID := ""
			if strings.Count(line, "-") == 4 {
				wantUUID = line
			}
			if got.GUID != line || got.UUID != wantUUID || got.Serial != serial || serial != id.Serial {
				t.Errorf("rmm: guid %q uuid %q serial %q\nipmitool: guid %q serial %q (so uuid %q); machine serial %q",
					got.GUID, got.UUID, got.Serial, line, serial, wantUUID, id.Serial)
			}
			if id.GUID != "00112233-4455-6677-8899-aabbccddeeff" && (line != id.GUID || got.UUID != id.UUID) {
				t.Errorf("ipmitool prints %q, rmm's UUID %q; the machine's UUID is %q", line, got.UUID, id.UUID)
			}
		})
	}
}

// field returns the value of an ipmitool "Key : value" line.
func field(out, key string) string {
	for _, l := range strings.Split(out, "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == key {
			return strings.TrimSpace(v)
		}
	}
	return ""
}
