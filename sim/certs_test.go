package sim

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestCertDir: a fleet started twice with the same certificate directory
// presents the same certificates (what trust on first use needs), each
// Redfish BMC its own, kept in 0600 files named after the endpoint; without
// the option every start makes new ones.
func TestCertDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state", "rmm", "sim-certs")
	specs := Generate(block(t, 3), 3, HostSpec{Redfish: true, Username: "admin", Password: "fleet-pass"})
	specs[2].IPMI = true // an IPMI endpoint needs no certificate
	run := func(opts ...Option) map[string]string {
		t.Helper()
		f := start(t, specs, opts...)
		fps := map[string]string{}
		for _, h := range f.Hosts() {
			fps[h.Spec.Name] = h.Redfish.Fingerprint()
			// The fingerprint is what a client sees on the wire.
			fp := fetchFingerprint(t, h)
			if fp != fps[h.Spec.Name] {
				t.Errorf("%s presents %s, reports %s", h.Spec.Name, fp, fps[h.Spec.Name])
			}
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		return fps
	}
	first := run(WithCertDir(dir))
	second := run(WithCertDir(dir))
	fresh := run()
	seen := map[string]bool{}
	for name, fp := range first {
		if second[name] != fp {
			t.Errorf("%s: first run %s, second %s: the certificate changed", name, fp[:16], second[name][:16])
		}
		if fresh[name] == fp {
			t.Errorf("%s: a fleet without a certificate directory reused the kept certificate", name)
		}
		if seen[fp] {
			t.Errorf("%s shares its certificate with another BMC", name)
		}
		seen[fp] = true
	}
	if st, err := os.Stat(dir); err != nil || st.Mode().Perm() != 0o700 {
		t.Errorf("directory %v %v, want mode 0700", st.Mode(), err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != len(specs) {
		t.Errorf("%d files in %s, want %d (and no temporary ones): %v", len(entries), dir, len(specs), entries)
	}
	for _, s := range specs {
		p := filepath.Join(dir, fmt.Sprintf("%s_%d.pem", s.Addr, DefaultRedfishPort()))
		st, err := os.Stat(p)
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v %v, want a 0600 file", p, st, err)
		}
	}
}

// fetchFingerprint connects to h's Redfish endpoint and returns the SHA-256
// of the certificate it presents.
func fetchFingerprint(t *testing.T, h *Host) string {
	t.Helper()
	c := httpsClient(h.Redfish.Fingerprint(), 10*time.Second) // fails on any other certificate
	defer c.CloseIdleConnections()
	resp, err := c.Get("https://" + h.RedfishAddr().String() + "/redfish/v1")
	if err != nil {
		t.Fatalf("%s: %v", h.Spec.Name, err)
	}
	resp.Body.Close()
	if resp.TLS == nil || len(resp.TLS.PeerCertificates) == 0 {
		t.Fatalf("%s: no certificate", h.Spec.Name)
	}
	return fingerprint(resp.TLS.PeerCertificates[0].Raw)
}

func TestCertFor(t *testing.T) {
	ap := netip.MustParseAddrPort("127.0.30.200:8443")
	other := netip.MustParseAddrPort("127.0.30.201:8443")
	fileOf := func(dir string, ap netip.AddrPort) string {
		return filepath.Join(dir, ap.Addr().String()+"_"+"8443.pem")
	}
	for _, tc := range []struct {
		name    string
		prepare func(t *testing.T, dir string) // before certFor(dir, ap)
		wantErr string
		check   func(t *testing.T, dir string, fp string)
	}{
		{name: "made once, then kept", check: func(t *testing.T, dir, fp string) {
			again, err := certFor(dir, ap)
			if err != nil || fingerprint(again.Certificate[0]) != fp {
				t.Errorf("second load: %v, fingerprint changed", err)
			}
		}},
		{name: "a file for another address is replaced", prepare: func(t *testing.T, dir string) {
			if _, err := certFor(dir, other); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(fileOf(dir, other), fileOf(dir, ap)); err != nil {
				t.Fatal(err)
			}
		}, check: func(t *testing.T, dir, fp string) {
			c, err := certFor(dir, ap)
			if err != nil || !certFits(c, ap.Addr()) || fingerprint(c.Certificate[0]) != fp {
				t.Errorf("replacement not kept: %v", err)
			}
		}},
		{name: "not a certificate: an error naming the file", prepare: func(t *testing.T, dir string) {
			if err := os.WriteFile(fileOf(dir, ap), []byte("not pem"), 0o600); err != nil {
				t.Fatal(err)
			}
		}, wantErr: "127.0.30.200_8443.pem"},
		{name: "a file where the directory belongs: an error", prepare: func(t *testing.T, dir string) {
			if err := os.RemoveAll(dir); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(dir, nil, 0o600); err != nil { // a file where the directory belongs
				t.Fatal(err)
			}
		}, wantErr: "certificate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "certs")
			if err := os.MkdirAll(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			if tc.prepare != nil {
				tc.prepare(t, dir)
			}
			c, err := certFor(dir, ap)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one naming %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !certFits(c, ap.Addr()) {
				t.Errorf("certificate does not name %s", ap.Addr())
			}
			tc.check(t, dir, fingerprint(c.Certificate[0]))
		})
	}
}

// TestCertForConcurrent: processes (here goroutines) starting at once
// settle on one certificate.
func TestCertForConcurrent(t *testing.T) {
	dir := t.TempDir()
	ap := netip.MustParseAddrPort("127.0.30.202:8443")
	var wg sync.WaitGroup
	fps := make([]string, 8)
	for i := range fps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := certFor(dir, ap)
			if err != nil {
				t.Error(err)
				return
			}
			fps[i] = fingerprint(c.Certificate[0])
		}()
	}
	wg.Wait()
	c, err := certFor(dir, ap)
	if err != nil {
		t.Fatal(err)
	}
	for i, fp := range fps {
		if fp != fingerprint(c.Certificate[0]) {
			t.Errorf("caller %d got another certificate than the one kept", i)
		}
	}
}

func TestDefaultCertDir(t *testing.T) {
	for _, tc := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"XDG_STATE_HOME": "/s", "HOME": "/h"}, "/s/rmm/sim-certs"},
		{map[string]string{"HOME": "/h"}, "/h/.local/state/rmm/sim-certs"},
		{map[string]string{}, "/root/.local/state/rmm/sim-certs"},
	} {
		if got := DefaultCertDir(func(k string) string { return tc.env[k] }); got != tc.want {
			t.Errorf("%v: %s, want %s", tc.env, got, tc.want)
		}
	}
}

func fingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:])
}
