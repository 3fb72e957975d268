package ipmi

import (
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/rmm-project/rmm/bmc/ipmi/internal/testbmc"
)

func TestFormatGUID(t *testing.T) {
	now := time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name string
		raw  string
		want string
		uuid string // Identity.UUID for this GUID
	}{
		// ipmi_sim's GUIDs in the shared recipe: no valid version in any
		// byte order, so ipmitool dumps the bytes and there is no UUID.
		{"no valid version: raw dump", "a5a5a5a50000000000007f0046011856", "A5A5A5A50000000000007F0046011856", ""},
		// IPMI byte order, time-based, 2024: IPMI wins (its time is valid).
		{"ipmi order time-based", "5e4d3c2b1a09a18bd111341278563412", "12345678-1234-11d1-8ba1-091a2b3c4d5e", "12345678-1234-11d1-8ba1-091a2b3c4d5e"},
		// SMBIOS byte order, random (version 4).
		{"smbios random", "33221100554477468899aabbccddeeff", "00112233-4455-4677-8899-aabbccddeeff", "00112233-4455-4677-8899-aabbccddeeff"},
		// The simulator's encoding of a version 4 UUID (IPMI order).
		{"ipmi order random", "ffeeddccbbaa99887746554433221100", "00112233-4455-4677-8899-aabbccddeeff", "00112233-4455-4677-8899-aabbccddeeff"},
		{"all ones", "ffffffffffffffffffffffffffffffff", "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF", ""},
		{"all zeros", "00000000000000000000000000000000", "00000000000000000000000000000000", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := FormatGUID(hexGUID(t, tc.raw), now)
			if got != tc.want {
				t.Errorf("FormatGUID(%s) = %s, want %s", tc.raw, got, tc.want)
			}
			if u := guidUUID(got); u != tc.uuid {
				t.Errorf("UUID of %s = %q, want %q", got, u, tc.uuid)
			}
		})
	}
}

func TestIdentity(t *testing.T) {
	b := startBMC(t, testbmc.Options{})
	p := open(t, b, 17)
	id, err := p.Identity(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if want := FormatGUID(testbmc.DefaultGUID, time.Now()); id.GUID != want || want != "12345678-1234-11d1-8ba1-091a2b3c4d5e" {
		t.Errorf("GUID %q, want %q", id.GUID, want)
	}
	if id.UUID != id.GUID {
		t.Errorf("UUID %q, want the GUID %q (a version was recognised)", id.UUID, id.GUID)
	}
	if id.Firmware != "1.02" || id.Vendor != "Intel" {
		t.Errorf("firmware %q vendor %q, want 1.02 Intel", id.Firmware, id.Vendor)
	}
}

// TestGUIDMatchesIpmitool serves GUIDs from the test BMC and compares
// FormatGUID, and Identity's GUID and UUID, with the "System GUID" line of
// the installed ipmitool: UUID is that line when it is dashed, else empty.
func TestGUIDMatchesIpmitool(t *testing.T) {
	bin, err := exec.LookPath("ipmitool")
	if err != nil {
		t.Skip("ipmitool not installed")
	}
	b := startBMC(t, testbmc.Options{})
	r := rand.New(rand.NewPCG(1, 2))
	guids := [][16]byte{testbmc.DefaultGUID, {0xa5, 0xa5, 0xa5, 0xa5, 10: 0x7f, 12: 0x46, 13: 1, 14: 0x18, 15: 0x56}}
	for range 12 {
		var g [16]byte
		for i := range g {
			g[i] = byte(r.Uint32())
		}
		guids = append(guids, g)
	}
	// Time-based in each byte order, one in the future.
	for _, g := range []string{"0f23fa4c2d1e01119a07b0a1c2d3e4f5", "4cfa230f1e2d11019a07b0a1c2d3e4f5", "f5e4d3c2a1b0079a01111e2d4cfa230f", "0f23fa4c2d1eff1f9a07b0a1c2d3e4f5"} {
		guids = append(guids, hexGUID(t, g))
	}
	p := open(t, b, 17)
	dashed, raw := 0, 0
	for _, g := range guids {
		b.SetGUID(g)
		cmd := exec.Command(bin, "-I", "lanplus", "-C", "3", "-H", b.Addr.Addr().String(),
			"-p", fmt.Sprint(b.Addr.Port()), "-U", testbmc.User, "-E", "mc", "guid")
		cmd.Env = append(os.Environ(), "IPMI_PASSWORD="+testbmc.Password)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("ipmitool: %v\n%s", err, out)
		}
		var line string
		for _, l := range strings.Split(string(out), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "System GUID" {
				line = strings.TrimSpace(v)
			}
		}
		if got := FormatGUID(g, time.Now()); got != line {
			t.Errorf("GUID % x: FormatGUID %q, ipmitool %q", g, got, line)
		}
		id, err := p.Identity(ctx(t))
		if err != nil {
			t.Fatal(err)
		}
		wantUUID := ""
		if strings.Count(line, "-") == 4 {
			wantUUID = line
			dashed++
		} else {
			raw++
		}
		if id.GUID != line || id.UUID != wantUUID {
			t.Errorf("GUID % x: Identity GUID %q UUID %q; ipmitool %q, so UUID %q", g, id.GUID, id.UUID, line, wantUUID)
		}
	}
	if dashed == 0 || raw == 0 {
		t.Errorf("%d dashed and %d raw GUIDs: the test must cover both", dashed, raw)
	}
}

func hexGUID(t *testing.T, s string) (g [16]byte) {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != 16 {
		t.Fatalf("bad test GUID %q", s)
	}
	return [16]byte(b)
}
