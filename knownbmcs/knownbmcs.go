// Package knownbmcs remembers Redfish BMC certificate fingerprints, like
// ssh's known_hosts: the first connection to a BMC whose certificate the
// inventory does not pin records it, later connections must match, and a
// changed certificate is refused until someone reviews it (rmm known-bmcs).
//
// The file has one line per endpoint:
//
//	<ip:port> <sha256-hex> <host-name> <first-seen RFC 3339>
//
// Lines starting with # are comments. Several rmm processes may record at
// once: every change rewrites the file atomically under an exclusive lock.
package knownbmcs

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Entry is one remembered certificate.
type Entry struct {
	Addr        netip.AddrPort `json:"bmc"`
	Fingerprint string         `json:"fingerprint"`
	Name        string         `json:"host"`
	FirstSeen   time.Time      `json:"first_seen"`
}

// DefaultPath is $RMM_KNOWN_BMCS, else $XDG_STATE_HOME/rmm/known_bmcs, else
// ~/.local/state/rmm/known_bmcs.
func DefaultPath(getenv func(string) string) string {
	if p := getenv("RMM_KNOWN_BMCS"); p != "" {
		return p
	}
	if d := getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "rmm", "known_bmcs")
	}
	home := getenv("HOME")
	if home == "" {
		home = "/root"
	}
	return filepath.Join(home, ".local", "state", "rmm", "known_bmcs")
}

// Store is a known-BMCs file. It implements bmc.TrustStore.
type Store struct {
	path string
	now  func() time.Time

	mu      sync.Mutex
	loaded  bool
	entries map[netip.AddrPort]Entry
}

// New returns a store over path; the file is read on first use.
func New(path string) *Store { return &Store{path: path, now: time.Now} }

// Path is the file's path.
func (s *Store) Path() string { return s.path }

func (s *Store) load() error {
	if s.loaded {
		return nil
	}
	m, err := readFile(s.path)
	if err != nil {
		return err
	}
	s.entries = m
	s.loaded = true
	return nil
}

func readFile(path string) (map[netip.AddrPort]Entry, error) {
	m := map[netip.AddrPort]Entry{}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return m, nil
	}
	if err != nil {
		return nil, fmt.Errorf("known BMCs: %w", err)
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		if len(f) < 2 {
			return nil, fmt.Errorf("known BMCs %s:%d: want \"ip:port fingerprint [name] [first-seen]\"", path, n)
		}
		ap, err := netip.ParseAddrPort(f[0])
		if err != nil {
			return nil, fmt.Errorf("known BMCs %s:%d: %q is not an ip:port", path, n, f[0])
		}
		e := Entry{Addr: ap, Fingerprint: strings.ToLower(f[1])}
		if len(f) > 2 {
			e.Name = f[2]
		}
		if len(f) > 3 {
			e.FirstSeen, _ = time.Parse(time.RFC3339, f[3])
		}
		m[ap] = e
	}
	return m, sc.Err()
}

// Lookup returns the fingerprint recorded for an endpoint.
func (s *Store) Lookup(name string, ap netip.AddrPort) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.load(); err != nil {
		return "", false
	}
	e, ok := s.entries[ap]
	return e.Fingerprint, ok
}

// Remember records a fingerprint seen for the first time. It refuses to
// overwrite a different recorded fingerprint (use Forget first).
func (s *Store) Remember(name string, ap netip.AddrPort, fp string) error {
	return s.update(func(m map[netip.AddrPort]Entry) error {
		if old, ok := m[ap]; ok && old.Fingerprint != strings.ToLower(fp) {
			return fmt.Errorf("known BMCs: %s already has fingerprint %s", ap, old.Fingerprint)
		}
		if _, ok := m[ap]; !ok {
			m[ap] = Entry{Addr: ap, Fingerprint: strings.ToLower(fp), Name: name, FirstSeen: s.now().UTC().Truncate(time.Second)}
		}
		return nil
	})
}

// Forget removes the entries for the given endpoints and reports how many
// were removed.
func (s *Store) Forget(aps ...netip.AddrPort) (int, error) {
	n := 0
	err := s.update(func(m map[netip.AddrPort]Entry) error {
		for _, ap := range aps {
			if _, ok := m[ap]; ok {
				delete(m, ap)
				n++
			}
		}
		return nil
	})
	return n, err
}

// List returns every entry, ordered by address.
func (s *Store) List() ([]Entry, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.loaded = false
	if err := s.load(); err != nil {
		return nil, err
	}
	out := make([]Entry, 0, len(s.entries))
	for _, e := range s.entries {
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Addr.Compare(out[j].Addr) < 0 })
	return out, nil
}

// update re-reads the file under an exclusive lock (another rmm may have
// written it), applies fn, and replaces the file atomically.
func (s *Store) update(fn func(map[netip.AddrPort]Entry) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := os.MkdirAll(filepath.Dir(s.path), 0o700); err != nil {
		return fmt.Errorf("known BMCs: %w", err)
	}
	lock, err := os.OpenFile(s.path+".lock", os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return fmt.Errorf("known BMCs: %w", err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return fmt.Errorf("known BMCs: lock: %w", err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)

	m, err := readFile(s.path)
	if err != nil {
		return err
	}
	if err := fn(m); err != nil {
		return err
	}
	var b bytes.Buffer
	b.WriteString("# rmm known BMCs: ip:port sha256-fingerprint host first-seen\n# review with 'rmm known-bmcs', remove a changed one with 'rmm known-bmcs forget HOST'\n")
	keys := make([]netip.AddrPort, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].Compare(keys[j]) < 0 })
	for _, k := range keys {
		e := m[k]
		name := e.Name
		if name == "" {
			name = "-"
		}
		fmt.Fprintf(&b, "%s %s %s %s\n", k, e.Fingerprint, name, e.FirstSeen.Format(time.RFC3339))
	}
	tmp, err := os.CreateTemp(filepath.Dir(s.path), ".known_bmcs-*")
	if err != nil {
		return fmt.Errorf("known BMCs: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b.Bytes()); err != nil {
		tmp.Close()
		return fmt.Errorf("known BMCs: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("known BMCs: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("known BMCs: %w", err)
	}
	if err := os.Rename(tmp.Name(), s.path); err != nil {
		return fmt.Errorf("known BMCs: %w", err)
	}
	s.entries = m
	s.loaded = true
	return nil
}
