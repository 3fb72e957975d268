package healthstate

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rmm-project/rmm/bmc"
)

var t0 = time.Date(2026, 3, 1, 2, 0, 0, 0, time.UTC)

// rec is a SEL record in a test log.
func rec(src, id string, at time.Duration, sev bmc.Severity, msg string) bmc.SELEntry {
	e := bmc.SELEntry{Source: src, ID: id, Severity: sev, Message: msg}
	if at >= 0 {
		e.Time = t0.Add(at)
	}
	return e
}

const untimed = -1

func ids(es []bmc.SELEntry) []string {
	var out []string
	for _, e := range es {
		out = append(out, e.ID)
	}
	return out
}

// prevAt is the state a check of log es leaves behind.
func prevAt(es []bmc.SELEntry, identity string) *Host {
	return &Host{Host: "db1", BMC: "10.0.5.11", BMCIdentity: identity, Last: MarkOf(es)}
}

func TestNewEntries(t *testing.T) {
	crit, info := bmc.SeverityCritical, bmc.SeverityInfo
	old := []bmc.SELEntry{
		rec("ipmi", "1", 0, info, "power on"),
		rec("ipmi", "2", time.Minute, crit, "OS Critical Stop"),
		rec("ipmi", "3", untimed, crit, "Linux kernel panic: Fatal"),
	}
	appended := append(slices.Clone(old),
		rec("ipmi", "4", time.Hour, crit, "OS Critical Stop"),
		rec("ipmi", "5", untimed, crit, "Linux kernel panic: Oops"))
	// Cleared, then refilled: IDs restart and one collides with the old mark.
	refilled := []bmc.SELEntry{
		rec("ipmi", "1", 2*time.Hour, info, "log cleared"),
		rec("ipmi", "2", 2*time.Hour, crit, "OS Critical Stop"),
		rec("ipmi", "3", untimed, crit, "Linux kernel panic: again"),
	}
	// The BMC rebooted and lost its clock: later records carry pre-init
	// (zero) or earlier time stamps but come after the mark in the log.
	clockBack := append(slices.Clone(old), rec("ipmi", "4", -time.Hour+time.Minute, crit, "OS Critical Stop"))
	// Wrapped: the oldest records (and the mark) were overwritten.
	wrapped := []bmc.SELEntry{rec("ipmi", "7", 3*time.Hour, crit, "PSU failure")}
	// The same SEL seen through Redfish: other IDs, same time stamps.
	redfishView := []bmc.SELEntry{
		rec("/redfish/v1/Managers/1/LogServices/SEL", "101", 0, info, "power on"),
		rec("/redfish/v1/Managers/1/LogServices/SEL", "102", time.Minute, crit, "OS Critical Stop"),
		rec("/redfish/v1/Managers/1/LogServices/SEL", "103", time.Minute, crit, "Linux kernel panic: Fatal"),
		rec("/redfish/v1/Managers/1/LogServices/SEL", "104", 2*time.Hour, crit, "Temperature critical"),
	}

	tests := []struct {
		name      string
		prev      *Host
		identity  string
		log       []bmc.SELEntry
		base      Baseline
		wantNew   []string
		wantLast  string
		wantEmpty bool // no mark (empty log)
	}{
		{"first check takes every record", nil, "", old, Baseline{}, []string{"1", "2", "3"}, "3", false},
		{"first check since a time: untimed records follow their event", nil, "", appended, Baseline{Since: t0.Add(30 * time.Minute)}, []string{"4", "5"}, "5", false},
		{"nothing new", prevAt(old, ""), "", old, Baseline{}, nil, "3", false},
		{"appended after the mark", prevAt(old, ""), "", appended, Baseline{}, []string{"4", "5"}, "5", false},
		{"cleared and refilled, ids restart", prevAt(old, ""), "", refilled, Baseline{}, []string{"1", "2", "3"}, "3", false},
		{"cleared and empty", prevAt(old, ""), "", nil, Baseline{}, nil, "", true},
		{"empty before, records now", prevAt(nil, ""), "", old, Baseline{}, []string{"1", "2", "3"}, "3", false},
		{"clock jumped back after the mark", prevAt(old, ""), "", clockBack, Baseline{}, []string{"4"}, "4", false},
		{"wrapped past the mark", prevAt(old, ""), "", wrapped, Baseline{}, []string{"7"}, "7", false},
		{"replaced BMC starts from the baseline", prevAt(old, "guid=a"), "guid=b", refilled, Baseline{Since: t0.Add(90 * time.Minute)}, []string{"1", "2", "3"}, "3", false},
		{"replaced BMC with an old log", prevAt(appended, "guid=a"), "guid=b", old, Baseline{Since: t0.Add(90 * time.Minute)}, nil, "3", false},
		{"same BMC, identity unread this time", prevAt(old, "guid=a"), "", old, Baseline{}, nil, "3", false},
		{"other source: later time stamps only", prevAt(old, ""), "", redfishView, Baseline{}, []string{"104"}, "104", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fresh, last := NewEntries(tt.prev, tt.identity, tt.log, tt.base)
			if got := ids(fresh); !slices.Equal(got, tt.wantNew) {
				t.Errorf("new records %v, want %v", got, tt.wantNew)
			}
			switch {
			case tt.wantEmpty && last != nil:
				t.Errorf("mark %+v for an empty log", last)
			case !tt.wantEmpty && (last == nil || last.ID != tt.wantLast):
				t.Errorf("mark %+v, want id %s", last, tt.wantLast)
			case last != nil && last.Time.IsZero():
				t.Errorf("mark %+v has no time although the log has time stamps", last)
			}
		})
	}
}

// A record that merely shares ID and source with the mark is not the mark:
// its digest differs.
func TestMarkNeedsTheSameRecord(t *testing.T) {
	a := rec("ipmi", "2", time.Minute, bmc.SeverityCritical, "OS Critical Stop")
	b := a
	b.Raw = "0200"
	if MarkOf([]bmc.SELEntry{a}).Digest == MarkOf([]bmc.SELEntry{b}).Digest {
		t.Fatal("different records share a digest")
	}
	fresh, _ := NewEntries(prevAt([]bmc.SELEntry{a}, ""), "", []bmc.SELEntry{b}, Baseline{})
	if len(fresh) != 1 {
		t.Errorf("%d new records, want the refilled one", len(fresh))
	}
}

func TestCritical(t *testing.T) {
	es := []bmc.SELEntry{
		rec("ipmi", "1", 0, bmc.SeverityInfo, ""),
		rec("ipmi", "2", 0, bmc.SeverityWarning, ""),
		rec("ipmi", "3", 0, bmc.SeverityCritical, ""),
	}
	if got := ids(Critical(es)); !slices.Equal(got, []string{"3"}) {
		t.Errorf("critical %v", got)
	}
}

func TestIdentityKey(t *testing.T) {
	if k := IdentityKey(bmc.Identity{}); k != "" {
		t.Errorf("empty identity key %q", k)
	}
	k := IdentityKey(bmc.Identity{GUID: "g", Serial: "s", Firmware: "1.0"})
	if k != "guid=g,serial=s" {
		t.Errorf("key %q: firmware must not be part of it (an upgrade is not a new BMC)", k)
	}
}

func TestUpdateRoundTripAndPermissions(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "health-state.json")
	h := Host{Host: "db1", BMC: "10.0.5.11", CriticalTotal: 4, Checked: t0,
		Last: &Mark{Source: "ipmi", ID: "1a", Time: t0, Digest: "abc"}}
	if err := Update(path, func(f *File) { f.Put(h) }); err != nil {
		t.Fatal(err)
	}
	f, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	got := f.Find("db1", "10.0.5.11")
	if got == nil || got.CriticalTotal != 4 || got.Last == nil || got.Last.ID != "1a" || !got.Checked.Equal(t0) {
		t.Fatalf("read back %+v", got)
	}
	if f.Find("db1", "10.0.5.12") != nil {
		t.Error("found db1 at another BMC address")
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("state file mode %v (%v), want 0600", st.Mode(), err)
	}
	left, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".health-state-*"))
	if len(left) != 0 {
		t.Errorf("temporary files left behind: %v", left)
	}
}

// Concurrent runs over different hosts keep each other's entries: the
// file is re-read under the lock.
func TestUpdateConcurrentWritersKeepEveryHost(t *testing.T) {
	path := filepath.Join(t.TempDir(), "health-state.json")
	const n = 20
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- Update(path, func(f *File) {
				f.Put(Host{Host: fmt.Sprintf("h%02d", i), BMC: "10.0.0.1", CriticalTotal: uint64(i)})
			})
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	f, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Hosts) != n {
		t.Fatalf("%d hosts after %d concurrent writers", len(f.Hosts), n)
	}
	for i := 1; i < n; i++ {
		if f.Hosts[i-1].Host >= f.Hosts[i].Host {
			t.Errorf("hosts not sorted: %s before %s", f.Hosts[i-1].Host, f.Hosts[i].Host)
		}
	}
}

func TestLoadRefusesWhatItCannotRead(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name, content, wantErr string
	}{
		{"garbage", "{not json", "health state"},
		{"unknown field", `{"version":1,"hosts":[],"extra":1}`, "unknown field"},
		{"other version", `{"version":2,"hosts":[]}`, "version 2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "-")+".json")
			if err := os.WriteFile(path, []byte(tt.content), 0o600); err != nil {
				t.Fatal(err)
			}
			if _, err := Load(path); err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Load: %v, want an error containing %q", err, tt.wantErr)
			}
			// Update starts afresh instead of failing for good.
			if err := Update(path, func(f *File) { f.Put(Host{Host: "a", BMC: "10.0.0.1"}) }); err != nil {
				t.Fatal(err)
			}
			f, err := Load(path)
			if err != nil || len(f.Hosts) != 1 {
				t.Fatalf("after Update: %v %+v", err, f)
			}
		})
	}
	if f, err := Load(filepath.Join(dir, "missing.json")); err != nil || len(f.Hosts) != 0 {
		t.Errorf("missing file: %v %+v, want an empty state", err, f)
	}
}

func TestPrune(t *testing.T) {
	f := &File{Hosts: []Host{{Host: "a", BMC: "1"}, {Host: "b", BMC: "2"}, {Host: "a", BMC: "3"}}}
	f.Prune(func(h, b string) bool { return h == "a" && b == "1" || h == "b" })
	if len(f.Hosts) != 2 || f.Find("a", "3") != nil {
		t.Errorf("after prune: %+v", f.Hosts)
	}
}

func TestDefaultPath(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	tests := []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"RMM_HEALTH_STATE": "/x/s.json", "XDG_STATE_HOME": "/s"}, "/x/s.json"},
		{map[string]string{"XDG_STATE_HOME": "/s", "HOME": "/h"}, "/s/rmm/health-state.json"},
		{map[string]string{"HOME": "/h"}, "/h/.local/state/rmm/health-state.json"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := DefaultPath(env(tt.env)); got != tt.want {
				t.Errorf("got %s", got)
			}
		})
	}
}
