package ipmi

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rmm-project/rmm/bmc"
	"github.com/rmm-project/rmm/bmc/ipmi/internal/testbmc"
)

const panicMsg = "Attempted to kill init! exitcode=0x00000009"

// panicBMC is a BMC whose SEL holds what Linux logs on a panic, after a
// pre-init record, with the "OS Stop" SDR naming the kernel's sensor.
func panicBMC(t *testing.T, logged time.Time) *testbmc.BMC {
	b := startBMC(t, testbmc.Options{})
	b.AddSDR(testbmc.EventOnly(testbmc.OwnerKernel, 0x01, 0x20, 0x6f, "OS Stop"))
	b.AddSDR(testbmc.FullSensor(testbmc.OwnerBMC, 0x30, 0x01, "CPU Temp",
		testbmc.Threshold{M: 1, Unit: 1, UCR: 90, UNC: 80, ReadableThresholds: 0x3f}))
	var boot [16]byte // a temperature event logged 1234 s after BMC start
	boot[2] = 0x02
	binary.LittleEndian.PutUint32(boot[3:], 1234)
	boot[7], boot[9], boot[10], boot[11], boot[12], boot[13] = 0x20, 0x04, 0x01, 0x30, 0x01, 0x59 // UCR going high
	boot[14], boot[15] = 95, 90
	b.SEL.Add(boot)
	for _, r := range testbmc.PanicRecords(uint32(logged.Unix()), panicMsg) {
		b.SEL.Add(r)
	}
	return b
}

func TestSEL(t *testing.T) {
	logged := time.Date(2026, 11, 30, 0, 39, 47, 0, time.UTC)
	b := panicBMC(t, logged)
	p := open(t, b, 17)
	entries, err := p.SEL(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 6 { // boot event, panic event, 4 panic strings
		t.Fatalf("%d entries, want 6: %+v", len(entries), entries)
	}
	pre := entries[0]
	if !pre.Time.IsZero() || pre.Sensor != "CPU Temp" || pre.SensorType != "Temperature" ||
		pre.Event != "Upper Critical - going high" || pre.Severity != bmc.SeverityCritical {
		t.Errorf("pre-init threshold entry: %+v", pre)
	}
	e := entries[1]
	want := bmc.SELEntry{
		ID: "2", Time: logged, SensorType: "OS Critical Stop", SensorTypeCode: 0x20, SensorNumber: 1,
		Sensor: "OS Stop", Event: "Run-time critical stop", Direction: "asserted",
		Severity: bmc.SeverityCritical, Message: "kernel panic: " + panicMsg,
		Raw: e.Raw, Source: "ipmi",
	}
	if e != want {
		t.Errorf("panic entry\n got %+v\nwant %+v", e, want)
	}
	if !e.IsKernelPanic() {
		t.Error("panic entry is not IsKernelPanic")
	}
	if !strings.HasPrefix(e.Raw, "020002") || len(e.Raw) != 32 {
		t.Errorf("raw %q", e.Raw)
	}
	var text string
	for _, s := range entries[2:] {
		if s.SensorType != "Linux kernel panic" || s.Severity != bmc.SeverityCritical {
			t.Errorf("panic string entry: %+v", s)
		}
		text += s.Message
	}
	if text != panicMsg {
		t.Errorf("panic strings %q, want %q", text, panicMsg)
	}
}

// TestSELMatchesIpmitoolAndFreeIPMI reads the same SEL with the installed
// ipmitool ("sel elist") and FreeIPMI ("ipmi-sel") and checks that rmm
// names the panic entry as they do.
func TestSELMatchesIpmitoolAndFreeIPMI(t *testing.T) {
	b := panicBMC(t, time.Now().Truncate(time.Second))
	p := open(t, b, 3)
	entries, err := p.SEL(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	e := entries[1]
	host, port := b.Addr.Addr().String(), fmt.Sprint(b.Addr.Port())
	env := append(os.Environ(), "IPMI_PASSWORD="+testbmc.Password)
	t.Run("ipmitool", func(t *testing.T) {
		bin, err := exec.LookPath("ipmitool")
		if err != nil {
			t.Skip("ipmitool not installed")
		}
		cmd := exec.Command(bin, "-I", "lanplus", "-C", "3", "-H", host, "-p", port, "-U", testbmc.User, "-E", "sel", "elist")
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("ipmitool: %v\n%s", err, out)
		}
		// "   2 | 11/30/26 | 00:39:47 UTC | OS Critical Stop OS Stop | Run-time critical stop | Asserted"
		line := findLine(string(out), "2")
		f := strings.Split(line, "|")
		if len(f) < 6 {
			t.Fatalf("no entry 2 in:\n%s", out)
		}
		if got := strings.TrimSpace(f[3]); got != e.SensorType+" "+e.Sensor {
			t.Errorf("sensor column %q, rmm %q", got, e.SensorType+" "+e.Sensor)
		}
		if got := strings.TrimSpace(f[4]); got != e.Event {
			t.Errorf("event column %q, rmm %q", got, e.Event)
		}
		if got := strings.TrimSpace(f[5]); !strings.EqualFold(got, e.Direction) {
			t.Errorf("direction column %q, rmm %q", got, e.Direction)
		}
		if want := e.Time.Local().Format("01/02/06 | 15:04:05"); !strings.Contains(line, want) && !strings.Contains(line, e.Time.UTC().Format("01/02/06 | 15:04:05")) {
			t.Errorf("time in %q, rmm %s", line, e.Time)
		}
		if l3 := findLine(string(out), "3"); !strings.Contains(l3, "Linux kernel panic: "+entries[2].Message) {
			t.Errorf("panic string line %q, rmm %q", l3, entries[2].Message)
		}
	})
	t.Run("ipmi-sel", func(t *testing.T) {
		bin, err := exec.LookPath("ipmi-sel")
		if err != nil {
			t.Skip("FreeIPMI not installed")
		}
		// The password goes in a 0600 config file, not on argv.
		dir := t.TempDir()
		conf := filepath.Join(dir, "freeipmi.conf")
		if err := os.WriteFile(conf, []byte("username "+testbmc.User+"\npassword "+testbmc.Password+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		var out []byte
		for try := 0; ; try++ {
			cmd := exec.Command(bin, "--config-file", conf, "-D", "LAN_2_0", "-h", host+":"+port,
				"--sdr-cache-directory", dir, "--sdr-cache-recreate", "--no-header-output")
			out, err = cmd.CombinedOutput()
			// go-ipmi's BMC stamps "now" as the SDR repository's last
			// change, so a cache built across a second boundary is already
			// "out of date" when ipmi-sel checks it; build it again.
			if err != nil && try < 3 && strings.Contains(string(out), "SDR cache out of date") {
				continue
			}
			break
		}
		if err != nil {
			t.Fatalf("ipmi-sel: %v\n%s", err, out)
		}
		// "2 | Nov-30-2026 | 00:39:47 | OS Stop | OS Critical Stop | Run-time Critical Stop ; ..."
		f := strings.Split(findLine(string(out), "2"), "|")
		if len(f) < 6 {
			t.Fatalf("no entry 2 in:\n%s", out)
		}
		if got := strings.TrimSpace(f[3]); got != e.Sensor {
			t.Errorf("sensor name %q, rmm %q", got, e.Sensor)
		}
		if got := strings.TrimSpace(f[4]); got != e.SensorType {
			t.Errorf("sensor type %q, rmm %q", got, e.SensorType)
		}
		if got := strings.TrimSpace(strings.Split(f[5], ";")[0]); !strings.EqualFold(got, e.Event) {
			t.Errorf("event %q, rmm %q", got, e.Event)
		}
	})
}

// findLine returns the table row whose first column is id.
func findLine(out, id string) string {
	for _, l := range strings.Split(out, "\n") {
		if first, _, ok := strings.Cut(l, "|"); ok && strings.TrimSpace(first) == id {
			return l
		}
	}
	return ""
}

func TestClearSEL(t *testing.T) {
	for _, polls := range []int{0, 3} {
		t.Run(fmt.Sprintf("%d status polls", polls), func(t *testing.T) {
			b := panicBMC(t, time.Now())
			b.SEL.SetClearPolls(polls)
			p := open(t, b, 17)
			if err := p.ClearSEL(ctx(t)); err != nil {
				t.Fatal(err)
			}
			if n := b.SEL.Len(); n != 0 {
				t.Errorf("%d records after clear", n)
			}
			if e, err := p.SEL(ctx(t)); err != nil || len(e) != 0 {
				t.Errorf("SEL after clear: %v, %v", e, err)
			}
		})
	}
	t.Run("never completes", func(t *testing.T) {
		b := panicBMC(t, time.Now())
		b.SEL.SetClearPolls(1000)
		p := open(t, b, 17)
		if err := p.ClearSEL(ctx(t)); !errors.Is(err, bmc.ErrTimeout) {
			t.Errorf("clear: %v, want a timeout", err)
		}
	})
}

func TestSELUnsupported(t *testing.T) {
	b := startBMC(t, testbmc.Options{})
	b.SEL.SetUnsupported(true)
	p := open(t, b, 17)
	if _, err := p.SEL(ctx(t)); !errors.Is(err, bmc.ErrUnsupported) {
		t.Errorf("SEL: %v, want ErrUnsupported", err)
	}
	if err := p.ClearSEL(ctx(t)); !errors.Is(err, bmc.ErrUnsupported) {
		t.Errorf("ClearSEL: %v, want ErrUnsupported", err)
	}
}
