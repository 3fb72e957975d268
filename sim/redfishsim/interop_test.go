package redfishsim

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestRedfishtoolInterop drives the simulator with DMTF's redfishtool
// (Debian package redfishtool), an independent Python client: session
// login and logout, the Systems collection, PowerState, and Reset.
//
// Credentials go through redfishtool's -c config file (a JSON object with
// user and password, mode 0600), never argv. The test skips when
// redfishtool is not installed, and fails then if RMM_REQUIRE_INTEROP=1.
func TestRedfishtoolInterop(t *testing.T) {
	bin, err := exec.LookPath("redfishtool")
	if err != nil {
		msg := "redfishtool is not installed (apt install redfishtool); interop with an independent Redfish client NOT tested"
		if os.Getenv("RMM_REQUIRE_INTEROP") == "1" {
			t.Fatal(msg + ", and RMM_REQUIRE_INTEROP=1")
		}
		fmt.Fprintln(os.Stderr, "SKIP:", msg)
		t.Skip(msg)
	}
	cfg := filepath.Join(t.TempDir(), "redfishtool.json")
	creds, _ := json.Marshal(map[string]string{"user": testUser, "password": testPass})
	if err := os.WriteFile(cfg, creds, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, v := range vendorNames {
		t.Run(v, func(t *testing.T) {
			t.Parallel()
			f := start(t, v)
			run := func(args ...string) (string, error) {
				ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
				defer cancel()
				full := append([]string{"-n", "-S", "Always", "-A", "Session", "-T", "10", "-r", f.srv.Addr().String(), "-c", cfg}, args...)
				cmd := exec.CommandContext(ctx, bin, full...)
				cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "LANG=C.UTF-8"}
				out, err := cmd.CombinedOutput()
				return string(out), err
			}
			out, err := run("Systems")
			if err != nil || !strings.Contains(out, known[v].system) {
				t.Fatalf("Systems: %v\n%s", err, out)
			}
			out, err = run("Systems", "-F", "reset", "ForceOff")
			if err != nil || f.m.PowerOn() {
				t.Fatalf("reset ForceOff: %v, machine on=%v\n%s", err, f.m.PowerOn(), out)
			}
			out, err = run("Systems", "-F", "-P", "PowerState", "get")
			if err != nil || !strings.Contains(out, `"Off"`) {
				t.Fatalf("PowerState: %v\n%s", err, out)
			}
			out, err = run("Systems", "-F", "reset", "On")
			if err != nil || !f.m.PowerOn() {
				t.Fatalf("reset On: %v, machine on=%v\n%s", err, f.m.PowerOn(), out)
			}
			// A type the BMC does not offer: refused, the machine untouched.
			before := len(f.m.Actions())
			if out, err = run("Systems", "-F", "reset", known[v].disallowed); err == nil {
				t.Errorf("reset %s accepted:\n%s", known[v].disallowed, out)
			}
			if got := f.m.Actions()[before:]; len(got) != 0 {
				t.Errorf("a refused reset reached the machine: %v", got)
			}
			if n := f.srv.OpenSessions(); n != 0 {
				t.Errorf("redfishtool left %d sessions open", n)
			}
			logins := 0
			for _, r := range f.srv.Requests() {
				if r.Method == "POST" && strings.HasPrefix(r.Path, "/redfish/v1/SessionService/Sessions") && r.Status == 201 {
					logins++
				}
				if strings.Contains(r.Body, testPass) {
					t.Fatal("request log shows the password")
				}
			}
			if logins == 0 {
				t.Error("redfishtool never used a session")
			}
		})
	}
}
