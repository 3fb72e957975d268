// Package healthstate is what `rmm health` remembers between runs: for each
// host and BMC address, the newest System Event Log record it has seen, so
// that a kernel panic pages once, not every five minutes until someone
// clears the SEL.
//
// The state is one small JSON file, rewritten atomically (a temporary file
// renamed over it) under an exclusive flock, re-read inside the lock so two
// runs over different hosts (cron for @db, cron for @web) do not undo each
// other's work:
//
//	{
//	  "version": 1,
//	  "hosts": [
//	    {
//	      "host": "db1",
//	      "bmc": "10.0.5.11",
//	      "bmc_identity": "guid=4c4c4544-...",
//	      "last": {"source": "ipmi", "id": "1a", "time": "2026-03-01T02:13:09Z", "digest": "9f2c..."},
//	      "critical_total": 4,
//	      "checked": "2026-03-01T02:15:00Z"
//	    }
//	  ]
//	}
//
// "last" is the newest record of the log as read (the BMC's log order for
// IPMI, (time, id) order for Redfish). How a later read is compared with it
// is in NewEntries. The package knows SEL entries (package bmc) and files;
// nothing about inventories or commands.
package healthstate

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/rmm-project/rmm/bmc"
)

// Version is the file format's version. A file with another version is
// treated as unreadable: rmm starts afresh rather than misread it.
const Version = 1

// File is the whole state file.
type File struct {
	Version int    `json:"version"`
	Hosts   []Host `json:"hosts"`
}

// Host is what is remembered about one host's BMC. Host and BMC together are
// the key: a host whose inventory entry moves to another BMC address starts
// afresh, as it is another controller with another log.
type Host struct {
	Host string `json:"host"`
	BMC  string `json:"bmc"`
	// BMCIdentity is the identity the BMC reported (see IdentityKey). When
	// it changes, the controller was replaced and its log is another log.
	BMCIdentity string `json:"bmc_identity,omitempty"`
	// Last is the newest SEL record seen; nil when the log was empty.
	Last *Mark `json:"last,omitempty"`
	// CriticalTotal counts every new critical record reported so far: the
	// value of the rmm_sel_critical_new_total counter.
	CriticalTotal uint64 `json:"critical_total"`
	// Checked is when the SEL was last read.
	Checked time.Time `json:"checked"`
}

// Mark identifies one SEL record across runs.
type Mark struct {
	// Source is where the log was read: "ipmi" or a Redfish log service
	// path. Record IDs are only comparable within one source.
	Source string `json:"source"`
	ID     string `json:"id"`
	// Time is the record's time stamp, or for a record without one (IPMI
	// pre-init and untimestamped OEM records) that of the last record before
	// it that has one; zero when none has.
	Time time.Time `json:"time,omitzero"`
	// Digest is a hash of the whole record, so a record with the same ID in
	// a cleared and refilled log is not taken for the old one.
	Digest string `json:"digest"`
}

// DefaultPath is $RMM_HEALTH_STATE, else $XDG_STATE_HOME/rmm/health-state.json,
// else ~/.local/state/rmm/health-state.json.
func DefaultPath(getenv func(string) string) string {
	if p := getenv("RMM_HEALTH_STATE"); p != "" {
		return p
	}
	if d := getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "rmm", "health-state.json")
	}
	home := getenv("HOME")
	if home == "" {
		home = "/root"
	}
	return filepath.Join(home, ".local", "state", "rmm", "health-state.json")
}

// Find returns the entry for host at bmc, or nil.
func (f *File) Find(host, bmcAddr string) *Host {
	for i := range f.Hosts {
		if f.Hosts[i].Host == host && f.Hosts[i].BMC == bmcAddr {
			return &f.Hosts[i]
		}
	}
	return nil
}

// Put adds or replaces the entry for h.Host at h.BMC.
func (f *File) Put(h Host) {
	if old := f.Find(h.Host, h.BMC); old != nil {
		*old = h
		return
	}
	f.Hosts = append(f.Hosts, h)
}

// Prune drops the entries keep rejects (hosts no longer in the inventory,
// or moved to another BMC address), so the file does not grow forever.
func (f *File) Prune(keep func(host, bmcAddr string) bool) {
	out := f.Hosts[:0]
	for _, h := range f.Hosts {
		if keep(h.Host, h.BMC) {
			out = append(out, h)
		}
	}
	f.Hosts = out
}

// Load reads the state file. A missing file is an empty state; a file that
// cannot be parsed is an error (the caller decides whether to start afresh).
func Load(path string) (*File, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return &File{Version: Version}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("health state: %w", err)
	}
	return parse(path, b)
}

func parse(path string, b []byte) (*File, error) {
	if len(bytes.TrimSpace(b)) == 0 {
		return &File{Version: Version}, nil
	}
	var f File
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("health state %s: %w", path, err)
	}
	if f.Version != Version {
		return nil, fmt.Errorf("health state %s: version %d, this rmm reads version %d", path, f.Version, Version)
	}
	return &f, nil
}

// Update re-reads the file under an exclusive lock (another rmm health may
// have written it since Load), lets fn change it, and replaces the file
// atomically: readers see the old or the new file, never half of one. An
// unparseable file is replaced by what fn makes of an empty state, so one
// corrupt write cannot stop monitoring for good.
func Update(path string, fn func(*File)) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("health state: %w", err)
	}
	lock, err := os.OpenFile(path+".lock", os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return fmt.Errorf("health state: %w", err)
	}
	defer lock.Close()
	if err := flock(lock); err != nil {
		return fmt.Errorf("health state: lock %s: %w", lock.Name(), err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)

	f, err := Load(path)
	if err != nil {
		f = &File{Version: Version}
	}
	fn(f)
	f.Version = Version
	sort.SliceStable(f.Hosts, func(i, j int) bool {
		if f.Hosts[i].Host != f.Hosts[j].Host {
			return f.Hosts[i].Host < f.Hosts[j].Host
		}
		return f.Hosts[i].BMC < f.Hosts[j].BMC
	})
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return fmt.Errorf("health state: %w", err)
	}
	b = append(b, '\n')

	tmp, err := os.CreateTemp(dir, ".health-state-*")
	if err != nil {
		return fmt.Errorf("health state: %w", err)
	}
	defer os.Remove(tmp.Name()) // after a successful rename this finds nothing
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return fmt.Errorf("health state: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("health state: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("health state: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("health state: %w", err)
	}
	return nil
}

// lockWait bounds how long Update waits for another rmm health to finish
// writing; writes take milliseconds, so a longer wait means a stuck process.
const lockWait = 30 * time.Second

// flock takes an exclusive lock, polling so the wait is bounded.
func flock(f *os.File) error {
	deadline := time.Now().Add(lockWait)
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("held by another process for more than %s", lockWait)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// IdentityKey is the BMC identity as stored: the fields that tell one
// controller (or machine) from another. Empty when the BMC reported none.
func IdentityKey(id bmc.Identity) string {
	var parts []string
	if id.GUID != "" {
		parts = append(parts, "guid="+id.GUID)
	}
	if id.UUID != "" {
		parts = append(parts, "uuid="+id.UUID)
	}
	if id.Serial != "" {
		parts = append(parts, "serial="+id.Serial)
	}
	return strings.Join(parts, ",")
}

// MarkOf returns the mark of the newest record of a log (oldest first), nil
// for an empty log.
func MarkOf(es []bmc.SELEntry) *Mark {
	if len(es) == 0 {
		return nil
	}
	e := es[len(es)-1]
	m := &Mark{Source: e.Source, ID: e.ID, Digest: digest(e)}
	for i := len(es) - 1; i >= 0 && m.Time.IsZero(); i-- {
		m.Time = es[i].Time
	}
	return m
}

// digest hashes everything a BMC reports about a record.
func digest(e bmc.SELEntry) string {
	h := sha256.New()
	for _, s := range []string{e.Source, e.ID, strconv.FormatInt(e.Time.UnixNano(), 10), e.Raw,
		e.SensorType, strconv.Itoa(int(e.SensorTypeCode)), strconv.Itoa(int(e.SensorNumber)),
		e.Sensor, e.Event, e.Direction, string(e.Severity), e.Message} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))[:32]
}

// Baseline says which records count as new on a host's first check (no
// state yet, or a replaced BMC): those at or after Since. Records without a
// time stamp take the time of the record before them in the log (Linux's
// panic-string records follow their OS Critical Stop event); with none
// before them they count as new. A zero Since makes every record new.
type Baseline struct {
	Since time.Time
}

// NewEntries returns the records of es (a log as read, oldest first) that
// were not there at the previous check, and the mark to remember for the
// next one (nil for an empty log). identity is IdentityKey of the BMC now.
//
// The previous check's newest record (prev.Last) is looked up in es by ID
// and digest:
//
//   - found: the records after it are new. This needs no clock, so a BMC
//     whose clock jumped back (a dead RTC battery, pre-init time stamps
//     after a BMC reboot) loses nothing.
//   - not found, same source: the log was cleared, wrapped past it, or the
//     record deleted. Every record in the log is then new: in the first two
//     cases that is exact, and in the third a repeat page is better than a
//     missed panic.
//   - not found, other source (the host answered over IPMI last time and
//     over Redfish now; both show one SEL with the same time stamps, not
//     the same record numbers): the records stamped later than the mark
//     are new. Records in the mark's own second are taken as seen: Redfish
//     gives a panic and its panic-string records one time stamp.
//
// No state, or a BMC whose identity changed (a replaced controller brings
// its own log), is a first check: records since base.Since are new.
func NewEntries(prev *Host, identity string, es []bmc.SELEntry, base Baseline) (fresh []bmc.SELEntry, last *Mark) {
	last = MarkOf(es)
	switch {
	case prev == nil || (prev.BMCIdentity != "" && identity != "" && prev.BMCIdentity != identity):
		return byTime(es, base.Since, true), last
	case prev.Last == nil:
		// The log was empty at the previous check: all of it is new.
		return es, last
	}
	mk := *prev.Last
	for i := len(es) - 1; i >= 0; i-- {
		if es[i].ID == mk.ID && es[i].Source == mk.Source && digest(es[i]) == mk.Digest {
			return es[i+1:], last
		}
	}
	if len(es) > 0 && es[0].Source == mk.Source {
		return es, last
	}
	return byTime(es, mk.Time, false), last
}

// byTime returns the records stamped after since (at or after, when
// inclusive). Untimed records follow the verdict on the record before them.
func byTime(es []bmc.SELEntry, since time.Time, inclusive bool) []bmc.SELEntry {
	if since.IsZero() {
		return es
	}
	var out []bmc.SELEntry
	isNew := true // an untimed record with nothing before it
	for _, e := range es {
		if !e.Time.IsZero() {
			isNew = e.Time.After(since) || (inclusive && e.Time.Equal(since))
		}
		if isNew {
			out = append(out, e)
		}
	}
	return out
}

// Critical returns the critical records of es.
func Critical(es []bmc.SELEntry) []bmc.SELEntry {
	var out []bmc.SELEntry
	for _, e := range es {
		if e.Severity == bmc.SeverityCritical {
			out = append(out, e)
		}
	}
	return out
}
