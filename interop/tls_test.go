package interop

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rmm-project/rmm/sim/redfishsim"
)

// colonUpper spells a fingerprint the way a BMC's web UI shows it
// (AB:CD:...), with a sha256: prefix: the inventory must accept it.
func colonUpper(fp string) string {
	var parts []string
	for i := 0; i+2 <= len(fp); i += 2 {
		parts = append(parts, strings.ToUpper(fp[i:i+2]))
	}
	return "sha256:" + strings.Join(parts, ":")
}

// TestTLS checks Redfish certificate trust end to end through the binary:
// a pinned fingerprint accepted, a wrong pin refused with a clear message,
// trust on first use recorded in known_bmcs and accepted on the next run,
// a changed certificate refused and shown by `rmm known-bmcs check`, and
// `insecure: true` accepted with a loud warning, only when used.
func TestTLS(t *testing.T) {
	t.Parallel()
	f := newFleet(t, nil,
		fhost{name: "pinned", protocols: "[redfish]", vendor: "dmtf"},
		fhost{name: "wrongpin", protocols: "[redfish]", vendor: "dell"},
		fhost{name: "tofu", protocols: "[redfish]", vendor: "hpe"},
		fhost{name: "insecure", protocols: "[redfish]", vendor: "supermicro"},
	)
	right := f.host("pinned").Redfish.Fingerprint()
	f.hosts[0].extra = fmt.Sprintf("    redfish: {port: %d, fingerprint: '%s'}", simRedfishPort, colonUpper(right))
	// wrongpin's pin is another BMC's certificate.
	f.hosts[1].extra = fmt.Sprintf("    redfish: {port: %d, fingerprint: %s}", simRedfishPort, right)
	f.hosts[3].extra = fmt.Sprintf("    redfish: {port: %d, insecure: true}", simRedfishPort)
	f.writeInventory("credentials:\n  t: {user: " + simUser + ", password_env: " + passwordEnv + "}\n")
	ctx := context.Background()
	known := filepath.Join(f.env["XDG_STATE_HOME"], "rmm", "known_bmcs")
	const warning = "TLS certificate checks are OFF"

	t.Run("pinned fingerprint accepted", func(t *testing.T) {
		r := f.bin(ctx, "power", "status", "pinned", "-o", "json")
		if row := powerRows(t, r)["pinned"]; r.code != 0 || row.Result != "ok" {
			t.Errorf("%s", r)
		}
		if strings.Contains(r.stderr, warning) {
			t.Errorf("the insecure warning without an insecure host:\n%s", r.stderr)
		}
	})

	t.Run("wrong pin refused", func(t *testing.T) {
		r := f.bin(ctx, "power", "status", "wrongpin", "-o", "json")
		row := powerRows(t, r)["wrongpin"]
		got := f.host("wrongpin").Redfish.Fingerprint()
		if r.code != 1 || row.Result == "ok" {
			t.Fatalf("a wrong pin was accepted: %s", r)
		}
		for _, w := range []string{hostErr("wrongpin", f.addr("wrongpin")), "certificate", got, right} {
			if !strings.Contains(row.Error, w) {
				t.Errorf("the refusal does not say %q: %s", w, row.Error)
			}
		}
		if row.Hint == "" || !strings.Contains(r.stderr, "hint:") {
			t.Errorf("no hint on how to fix the pin: %s", r)
		}
		if n := len(f.host("wrongpin").Redfish.Requests()); n != 0 {
			t.Errorf("rmm sent %d HTTP requests over a connection whose certificate it refused", n)
		}
	})

	t.Run("trust on first use, then a changed certificate refused", func(t *testing.T) {
		tofu := f.host("tofu")
		r := f.bin(ctx, "power", "status", "tofu", "-o", "json")
		if row := powerRows(t, r)["tofu"]; r.code != 0 || row.Result != "ok" {
			t.Fatalf("first use: %s", r)
		}
		b, err := os.ReadFile(known)
		if err != nil || !strings.Contains(string(b), tofu.Redfish.Fingerprint()) || !strings.Contains(string(b), f.addr("tofu")) {
			t.Fatalf("known_bmcs does not record tofu's certificate %s: %v\n%s", tofu.Redfish.Fingerprint(), err, b)
		}
		if st, err := os.Stat(known); err == nil && st.Mode().Perm()&0o022 != 0 {
			t.Errorf("known_bmcs is writable by others: %v", st.Mode())
		}
		if r := f.bin(ctx, "power", "status", "tofu"); r.code != 0 {
			t.Fatalf("second use with the recorded certificate: %s", r)
		}
		if r := f.bin(ctx, "known-bmcs"); r.code != 0 || !strings.Contains(r.stdout, "tofu") || !strings.Contains(r.stdout, tofu.Redfish.Fingerprint()) {
			t.Errorf("rmm known-bmcs does not list tofu's record: %s", r)
		}
		if r := f.bin(ctx, "known-bmcs", "check", "tofu"); r.code != 0 || !strings.Contains(r.stdout, "ok") {
			t.Errorf("known-bmcs check before the change: %s", r)
		}

		// The BMC gets a new certificate (same address, same machine).
		old := tofu.Redfish.Fingerprint()
		tofu.Redfish.Close()
		srv, err := redfishsim.Start(redfishsim.Config{Addr: tofu.RedfishAddr(), Vendor: "hpe", Username: simUser, Password: simPassword, Machine: tofu.Machine})
		if err != nil {
			t.Fatal(err)
		}
		defer srv.Close()
		if srv.Fingerprint() == old {
			t.Fatal("the new certificate has the old fingerprint")
		}
		r = f.bin(ctx, "power", "status", "tofu", "-o", "json")
		row := powerRows(t, r)["tofu"]
		if r.code != 1 || row.Result == "ok" {
			t.Fatalf("a changed certificate was accepted: %s", r)
		}
		for _, w := range []string{hostErr("tofu", f.addr("tofu")), srv.Fingerprint(), old} {
			if !strings.Contains(row.Error, w) {
				t.Errorf("the refusal does not say %q: %s", w, row.Error)
			}
		}
		r = f.bin(ctx, "known-bmcs", "check", "tofu")
		if r.code != 1 || !strings.Contains(r.stdout, "CHANGED") || !strings.Contains(r.stdout, srv.Fingerprint()) {
			t.Errorf("known-bmcs check does not show the change: %s", r)
		}
		t.Logf("known-bmcs check after the change:\n%s%s", r.stdout, r.stderr)
		if n := len(srv.Requests()); n != 0 {
			t.Errorf("rmm sent %d HTTP requests to the BMC with the changed certificate", n)
		}
		// Reviewed and forgotten: the next use records the new one.
		if r := f.bin(ctx, "known-bmcs", "forget", "tofu", "--yes"); r.code != 0 {
			t.Fatalf("forget: %s", r)
		}
		if r := f.bin(ctx, "power", "status", "tofu"); r.code != 0 {
			t.Errorf("after forget: %s", r)
		}
		if b, _ := os.ReadFile(known); !strings.Contains(string(b), srv.Fingerprint()) || strings.Contains(string(b), old) {
			t.Errorf("known_bmcs after forget and reuse:\n%s", b)
		}
		if n := srv.OpenSessions(); n != 0 {
			t.Errorf("%d sessions left on the BMC", n)
		}
	})

	t.Run("insecure accepted with a loud warning", func(t *testing.T) {
		r := f.bin(ctx, "power", "status", "insecure", "-o", "json")
		if row := powerRows(t, r)["insecure"]; r.code != 0 || row.Result != "ok" {
			t.Errorf("%s", r)
		}
		if !strings.Contains(r.stderr, warning) {
			t.Errorf("no warning on stderr for an insecure host:\n%s", r.stderr)
		}
		if strings.Contains(r.stdout, warning) {
			t.Errorf("the warning went to stdout (data only):\n%s", r.stdout)
		}
		// Insecure means any certificate: a new one too, without a record.
		ins := f.host("insecure")
		ins.Redfish.Close()
		srv, err := redfishsim.Start(redfishsim.Config{Addr: ins.RedfishAddr(), Vendor: "supermicro", Username: simUser, Password: simPassword, Machine: ins.Machine})
		if err != nil {
			t.Fatal(err)
		}
		defer srv.Close()
		r = f.bin(ctx, "power", "status", "insecure", "-o", "json")
		row := powerRows(t, r)["insecure"]
		b, _ := os.ReadFile(known)
		if row.Result != "ok" {
			t.Errorf("an insecure host with a new certificate was refused: %s", r)
		}
		if strings.Contains(string(b), f.addr("insecure")) {
			t.Errorf("an insecure host's certificate was recorded as trusted:\n%s", b)
		}
		if n := srv.OpenSessions(); n != 0 {
			t.Errorf("%d sessions left on the BMC", n)
		}
	})
}
