package interop

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// farmEnv is an inventory naming some farm BMCs, and rmm's environment.
type farmEnv struct {
	t     *testing.T
	inv   string
	env   map[string]string
	names map[*FarmBMC]string
}

// newFarmEnv writes an inventory for the BMCs (hosts named ipmisim-<last
// two octets>, cipher suite 3 unless suite says otherwise: ipmi_sim offers
// 0, 1, 2, 3 and 6, not rmm's preferred 17).
func newFarmEnv(t *testing.T, suite string, bmcs ...*FarmBMC) *farmEnv {
	t.Helper()
	dir := t.TempDir()
	e := &farmEnv{t: t, inv: filepath.Join(dir, "inventory.yaml"), names: map[*FarmBMC]string{}, env: map[string]string{
		"RMM_INTEROP_FARM_PASSWORD": farmPassword,
		"XDG_STATE_HOME":            filepath.Join(dir, "state"),
		"HOME":                      dir,
		"RMM_NO_SYSLOG":             "1",
		"USER":                      "interop",
		"PATH":                      os.Getenv("PATH"),
	}}
	ipmi := fmt.Sprintf("{port: %d}", bmcs[0].IPMIAddr().Port())
	if suite != "" {
		ipmi = fmt.Sprintf("{port: %d, cipher_suite: %s}", bmcs[0].IPMIAddr().Port(), suite)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "version: 1\ndefaults:\n  credentials: farm\n  protocols: [ipmi]\n  ipmi: %s\n", ipmi)
	fmt.Fprintf(&b, "credentials:\n  farm: {user: %s, password_env: RMM_INTEROP_FARM_PASSWORD}\ngroups:\n  farm: {}\nhosts:\n", farmUser)
	for _, bm := range bmcs {
		a := bm.Addr.As4()
		name := fmt.Sprintf("ipmisim-%d-%d", a[2], a[3])
		e.names[bm] = name
		fmt.Fprintf(&b, "  - name: %s\n    bmc: %s\n    groups: [farm]\n", name, bm.Addr)
	}
	if err := os.WriteFile(e.inv, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *farmEnv) rmm(args ...string) result {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return runBinary(e.t, ctx, e.env, nil, append([]string{"-i", e.inv}, args...), farmPassword)
}

// rmmPower runs rmm power ACTION on one BMC with -o json and returns its
// row; anything but success fails the test.
func (e *farmEnv) rmmPower(b *FarmBMC, action string, flags ...string) powerRow {
	e.t.Helper()
	name := e.names[b]
	r := e.rmm(append([]string{"power", action, name, "-o", "json"}, flags...)...)
	if r.code != 0 {
		e.t.Fatalf("rmm power %s %s: %s", action, name, r)
	}
	row := powerRows(e.t, r)[name]
	if row.Result != "ok" || row.Protocol != "ipmi" {
		e.t.Fatalf("rmm power %s %s: %+v", action, name, row)
	}
	return row
}

// TestInteropIPMISim drives OpenIPMI's ipmi_sim, an IPMI implementation
// rmm's authors did not write, with the real rmm binary, and checks every
// answer against ipmitool and FreeIPMI on the same BMCs. After each check
// ipmi_sim must still be running and hold no session of rmm's.
func TestInteropIPMISim(t *testing.T) {
	t.Run("power status agrees with ipmitool and ipmipower", func(t *testing.T) {
		t.Parallel()
		bmcs := []*FarmBMC{farmBMC(t, 0), farmBMC(t, 1), farmBMC(t, 2)}
		want := []bool{true, false, true}
		for i, b := range bmcs {
			if err := b.SetPowerState(want[i]); err != nil {
				t.Fatal(err)
			}
		}
		e := newFarmEnv(t, "3", bmcs...)
		r := e.rmm("power", "status", "@farm", "-o", "json")
		if r.code != 0 {
			t.Fatalf("rmm power status: %s", r)
		}
		rows := powerRows(t, r)
		var tgs []refTarget
		for _, b := range bmcs {
			tgs = append(tgs, farmTarget(b))
		}
		fi := ipmipowerStat(t, tgs...)
		for i, b := range bmcs {
			w := map[bool]string{true: "on", false: "off"}[want[i]]
			rmm, it, fp := rows[e.names[b]].After, ipmitoolPower(t, tgs[i]), fi[b.Addr.String()]
			if rmm != w || it != w || fp != w {
				t.Errorf("%s: chassis is %s; rmm says %q, ipmitool %q, ipmipower %q", b.Addr, w, rmm, it, fp)
			}
		}
	})

	t.Run("rmm power off, on and cycle change the chassis as ipmitool and ipmipower see it", func(t *testing.T) {
		t.Parallel()
		b := farmBMC(t, 3)
		if err := b.SetPowerState(true); err != nil {
			t.Fatal(err)
		}
		e := newFarmEnv(t, "3", b)
		tg := farmTarget(b)

		if row := e.rmmPower(b, "off", "--yes"); row.Before != "on" || row.After != "off" {
			t.Errorf("rmm power off: before %q after %q", row.Before, row.After)
		}
		if it, fp := ipmitoolPower(t, tg), ipmipowerStat(t, tg)[b.Addr.String()]; it != "off" || fp != "off" || b.PowerOn() {
			t.Errorf("after rmm power off: ipmitool %q, ipmipower %q, chassis on=%v", it, fp, b.PowerOn())
		}
		if row := e.rmmPower(b, "on"); row.After != "on" {
			t.Errorf("rmm power on: after %q", row.After)
		}
		if it, fp := ipmitoolPower(t, tg), ipmipowerStat(t, tg)[b.Addr.String()]; it != "on" || fp != "on" || !b.PowerOn() {
			t.Errorf("after rmm power on: ipmitool %q, ipmipower %q, chassis on=%v", it, fp, b.PowerOn())
		}
		before := strings.Count(b.ChassisLog(), "\n")
		// ipmi_sim's cycle: power off now, on again at its next 1 s poll.
		if row := e.rmmPower(b, "cycle", "--yes", "--wait"); row.After != "on" {
			t.Errorf("rmm power cycle --wait: after %q", row.After)
		}
		sets := strings.Split(strings.TrimSpace(b.ChassisLog()), "\n")[before:]
		if len(sets) != 2 || !strings.HasSuffix(sets[0], "set power 0") || !strings.HasSuffix(sets[1], "set power 1") {
			t.Errorf("rmm power cycle: the chassis saw %q, want set power 0 then set power 1", sets)
		}
		if it := ipmitoolPower(t, tg); it != "on" {
			t.Errorf("after rmm power cycle: ipmitool says %q", it)
		}
		// on when on: success, nothing sent.
		before = strings.Count(b.ChassisLog(), "\n")
		e.rmmPower(b, "on")
		if after := strings.Count(b.ChassisLog(), "\n"); after != before {
			t.Errorf("rmm power on an on chassis sent a power command: %s", b.ChassisLog())
		}
		checkFarmSessions(t, b)
	})

	t.Run("ipmitool and ipmipower change power, rmm reads it", func(t *testing.T) {
		t.Parallel()
		b := farmBMC(t, 4)
		if err := b.SetPowerState(true); err != nil {
			t.Fatal(err)
		}
		e := newFarmEnv(t, "3", b)
		tg := farmTarget(b)
		status := func() string {
			return e.rmmPower(b, "status").After
		}
		if out, err := ipmitool(t, tg, "chassis", "power", "off"); err != nil {
			t.Fatalf("ipmitool chassis power off: %v %s", err, out)
		}
		if s := status(); s != "off" {
			t.Errorf("after ipmitool power off rmm says %q", s)
		}
		ipmipowerDo(t, tg, "--on")
		if s := status(); s != "on" {
			t.Errorf("after ipmipower --on rmm says %q", s)
		}
		ipmipowerDo(t, tg, "--off")
		if s := status(); s != "off" {
			t.Errorf("after ipmipower --off rmm says %q", s)
		}
		if out, err := ipmitool(t, tg, "chassis", "power", "on"); err != nil {
			t.Fatalf("ipmitool chassis power on: %v %s", err, out)
		}
		if s := status(); s != "on" {
			t.Errorf("after ipmitool power on rmm says %q", s)
		}
	})

	t.Run("rmm negotiates a cipher suite ipmi_sim offers when the inventory names none", func(t *testing.T) {
		t.Parallel()
		b := farmBMC(t, 5)
		e := newFarmEnv(t, "", b)
		if row := e.rmmPower(b, "status"); row.After != "on" {
			t.Errorf("status %q", row.After)
		}
	})

	t.Run("wrong password is an authentication failure with a hint, no session left", func(t *testing.T) {
		t.Parallel()
		b := farmBMC(t, 6)
		// A previous run's ipmitool may still hold a half-open session.
		held, err := b.ActiveSessions(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		e := newFarmEnv(t, "3", b)
		e.env["RMM_INTEROP_FARM_PASSWORD"] = "not-the-password-1"
		r := runBinary(t, context.Background(), e.env, nil, []string{"-i", e.inv, "power", "status", e.names[b], "-o", "json"}, farmPassword)
		row := powerRows(t, r)[e.names[b]]
		if r.code != 1 || row.Result != "auth failed" || !strings.Contains(row.Error, hostErr(e.names[b], b.Addr.String())) || row.Hint == "" {
			t.Errorf("wrong password: %+v\n%s", row, r)
		}
		if n, err := b.ActiveSessions(context.Background()); err != nil || n != held {
			t.Errorf("after rmm's failed login ipmi_sim reports %d active sessions (%v), %d before: rmm left one", n, err, held)
		}
		// The same password through ipmitool: refused too (the BMC is the
		// judge, not rmm). ipmitool leaves a half-open session behind that
		// ipmi_sim reclaims ~30 s later; this test runs it last and says so.
		tg := farmTarget(b)
		tg.password = "not-the-password-1"
		if out, err := ipmitool(t, tg, "chassis", "power", "status"); err == nil {
			t.Errorf("ipmitool got in with the wrong password: %s", out)
		}
		if n, err := b.ActiveSessions(context.Background()); err == nil && n > held {
			t.Logf("reference difference: after a wrong password ipmitool leaves a session on ipmi_sim (%d active, %d before; rmm leaves none)", n, held)
		}
		b.skipSessionCheck = "ipmitool's failed login holds a session slot until ipmi_sim times it out"
	})

	t.Run("sel shows the kernel panic entries as ipmitool and ipmi-sel do, and sel clear empties it", func(t *testing.T) {
		t.Parallel()
		b := farmBMC(t, 7)
		tg := farmTarget(b)
		if err := b.AddPanicSEL(context.Background(), "Attempted to kill init! exitcode=0x00000009", false); err != nil {
			t.Fatal(err)
		}
		it := ipmitoolSEL(t, tg)
		fi := ipmiSEL(t, tg)
		if len(it) != 5 || !strings.Contains(it[0], "OS Critical Stop") || !strings.Contains(it[0], "Run-time critical stop") ||
			!strings.Contains(it[1], "Linux kernel panic: Attempted t") {
			t.Fatalf("ipmitool sel elist:\n%s", strings.Join(it, "\n"))
		}
		if len(fi) != 5 || !strings.Contains(fi[0], "OS Stop | OS Critical Stop | Run-time Critical Stop") {
			t.Fatalf("ipmi-sel:\n%s", strings.Join(fi, "\n"))
		}
		e := newFarmEnv(t, "3", b)
		r := e.rmm("sel", e.names[b], "-o", "json")
		if r.code != 0 {
			t.Fatalf("rmm sel: %s", r)
		}
		h := selHosts(t, r)[e.names[b]]
		for _, d := range compareSEL(it, h.Entries) {
			t.Errorf("rmm sel and ipmitool sel elist disagree: %s", d)
		}
		if len(h.Entries) > 0 {
			p := h.Entries[0]
			if !p.KernelPanic || !strings.Contains(p.Message, "Attempted to kill init! exitcode=0x00000009") || p.Severity != "critical" {
				t.Errorf("rmm sel: the OS Critical Stop entry is not reported as the kernel panic with its message: %+v", p)
			}
		}
		if t.Failed() {
			t.Logf("rmm sel -o json:\n%s\nipmitool sel elist:\n%s\nipmi-sel:\n%s", r.stdout, strings.Join(it, "\n"), strings.Join(fi, "\n"))
		}
		if r := e.rmm("sel", "clear", e.names[b], "--yes", "--reason", "interop"); r.code != 0 {
			t.Fatalf("rmm sel clear: %s", r)
		}
		if it := ipmitoolSEL(t, tg); len(it) != 0 {
			t.Errorf("after rmm sel clear ipmitool still lists:\n%s", strings.Join(it, "\n"))
		}
		if fi := ipmiSEL(t, tg); len(fi) != 0 {
			t.Errorf("after rmm sel clear ipmi-sel still lists:\n%s", strings.Join(fi, "\n"))
		}
	})

	t.Run("console capture shows what the host prints, as ipmitool sol does", func(t *testing.T) {
		t.Parallel()
		b := farmBMC(t, 8)
		tg := farmTarget(b)
		// Reference first: ipmitool sol activate, with a pipe as stdin,
		// ended after 3 s with "~." (killing it would leave the SOL payload
		// active for ~30 s).
		tok := fmt.Sprintf("ipmitool-token-%d", time.Now().UnixNano())
		out := captureWhilePrinting(t, b, tok, func(ctx context.Context) (string, error) {
			bin := needTool(t, "ipmitool", "ipmitool")
			cmd := exec.CommandContext(ctx, bin, "-I", "lanplus", "-C", "3", "-H", tg.addr, "-p", fmt.Sprint(tg.port), "-U", tg.user, "-E", "sol", "activate")
			cmd.Env = append(os.Environ(), "IPMI_PASSWORD="+tg.password)
			pr, pw, err := os.Pipe()
			if err != nil {
				return "", err
			}
			defer pw.Close()
			cmd.Stdin = pr
			quit := time.AfterFunc(3*time.Second, func() { _, _ = pw.Write([]byte("\r~.")) })
			defer quit.Stop()
			cmd.WaitDelay = 3 * time.Second
			o, err := cmd.CombinedOutput()
			pr.Close()
			return string(o), err
		})
		if !strings.Contains(out, tok) {
			t.Fatalf("the harness is broken: ipmitool sol activate did not see %q:\n%s", tok, out)
		}
		needCommand(t, "console")
		e := newFarmEnv(t, "3", b)
		tok = fmt.Sprintf("rmm-token-%d", time.Now().UnixNano())
		out = captureWhilePrinting(t, b, tok, func(ctx context.Context) (string, error) {
			r := e.rmm("console", e.names[b], "--capture", "2s")
			if r.code != 0 {
				return r.String(), fmt.Errorf("exit %d", r.code)
			}
			return r.stdout, nil
		})
		if !strings.Contains(out, tok) {
			t.Errorf("rmm console --capture did not show what the host printed (%q):\n%s", tok, out)
		}
		// Keys typed into rmm console reach the host. ipmi_sim keeps the
		// last acknowledged sequence number across sessions, so a client
		// whose first packet repeats the previous session's last number
		// loses it (the recipe's "first packet" quirk): ipmitool's session
		// above ended on one.
		// Two sessions: after ipmitool's, and after rmm's own.
		for i := range 2 {
			keys := fmt.Sprintf("typed-by-rmm-%d-%d", i, time.Now().UnixNano())
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			r := runBinaryStdin(t, ctx, e.env, nil, keys+"\r", []string{"-i", e.inv, "console", e.names[b]}, farmPassword)
			cancel()
			if r.code != 0 {
				t.Errorf("rmm console with keys on stdin: %s", r)
			}
			deadline := time.Now().Add(3 * time.Second)
			for !strings.Contains(b.readFile("keys.log"), keys) && time.Now().Before(deadline) {
				time.Sleep(20 * time.Millisecond)
			}
			if got := b.readFile("keys.log"); !strings.Contains(got, keys) {
				t.Errorf("session %d: the host did not receive the keys typed into rmm console (%q); it received %q", i+1, keys, got)
			}
		}
	})
}

// captureWhilePrinting runs capture while the host prints tok (with a
// counter) every 200 ms, and returns what capture returned.
func captureWhilePrinting(t *testing.T, b *FarmBMC, tok string, capture func(ctx context.Context) (string, error)) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; ; i++ {
			_ = b.Print(fmt.Sprintf("%s #%d\r\n", tok, i))
			select {
			case <-stop:
				return
			case <-time.After(200 * time.Millisecond):
			}
		}
	}()
	out, err := capture(ctx)
	close(stop)
	<-done
	if err != nil {
		t.Errorf("capture: %v\n%s", err, out)
	}
	return out
}

// TestFarmLivenessCheckCanFail proves the check every farm test ends with
// (ipmi_sim still running) can fail: Get Channel Payload Support for
// channel 0x0E, which rmm must never send, kills ipmi_sim, and Alive says
// so. It uses a farm of its own, since the BMC does not survive.
func TestFarmLivenessCheckCanFail(t *testing.T) {
	t.Parallel()
	needTool(t, "ipmi_sim", "openipmi")
	needTool(t, "ipmitool", "ipmitool")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	f, err := StartFarm(ctx, FarmConfig{Base: netip.MustParseAddr("127.0.71.201"), N: 1, User: farmUser, Password: farmPassword})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := f.BMCs()[0]
	if err := b.Alive(); err != nil {
		t.Fatal(err)
	}
	// No answer comes back from a crashed BMC: do not wait for one.
	rctx, rcancel := context.WithTimeout(ctx, time.Second)
	out, _ := b.Ipmitool(rctx, "raw", "0x06", "0x4e", "0x0e")
	rcancel()
	deadline := time.Now().Add(5 * time.Second)
	for b.Alive() == nil && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if err := b.Alive(); err == nil {
		t.Fatalf("ipmi_sim survived Get Channel Payload Support for channel 0x0E (ipmitool: %s): the liveness check proves nothing", oneLine(out))
	} else {
		t.Logf("as expected: %v", err)
	}
}
