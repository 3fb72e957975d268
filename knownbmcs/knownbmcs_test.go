package knownbmcs

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func TestRememberLookupForget(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rmm", "known_bmcs")
	s := New(path)
	ap := netip.MustParseAddrPort("127.0.1.21:8443")
	if _, ok := s.Lookup("db1", ap); ok {
		t.Fatal("empty store knows a fingerprint")
	}
	if err := s.Remember("db1", ap, "ABCDEF"); err != nil {
		t.Fatal(err)
	}
	// A second process reads what the first wrote.
	fp, ok := New(path).Lookup("db1", ap)
	if !ok || fp != "abcdef" {
		t.Fatalf("lookup = %q, %v", fp, ok)
	}
	if err := s.Remember("db1", ap, "123456"); err == nil || !strings.Contains(err.Error(), "already has fingerprint abcdef") {
		t.Fatalf("overwrite: %v", err)
	}
	n, err := s.Forget(ap)
	if err != nil || n != 1 {
		t.Fatalf("forget: %d, %v", n, err)
	}
	if _, ok := New(path).Lookup("db1", ap); ok {
		t.Fatal("forgotten entry still there")
	}
	st, _ := os.Stat(path)
	if st.Mode().Perm() != 0o600 {
		t.Errorf("mode %v", st.Mode().Perm())
	}
}

func TestConcurrentRemember(t *testing.T) {
	path := filepath.Join(t.TempDir(), "known_bmcs")
	var wg sync.WaitGroup
	for i := 0; i < 40; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ap := netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 1, byte(i + 1)}), 443)
			if err := New(path).Remember("h", ap, "aa"); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	es, err := New(path).List()
	if err != nil || len(es) != 40 {
		t.Fatalf("%d entries, %v", len(es), err)
	}
}

func TestBadFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "known_bmcs")
	os.WriteFile(path, []byte("# c\nbmc.example.com:443 aa\n"), 0o600)
	if _, err := New(path).List(); err == nil || !strings.Contains(err.Error(), ":2:") {
		t.Fatalf("err = %v", err)
	}
}
