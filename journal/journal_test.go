package journal

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestAppendAndRead(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state", "rmm", "audit.log")
	j, err := Open(path, false)
	if err != nil {
		t.Fatal(err)
	}
	want := Entry{Time: time.Date(2026, 11, 30, 3, 4, 5, 0, time.UTC), Operator: "alice", Reason: "INC-1", Host: "db1",
		BMC: "10.0.5.11", Protocol: "ipmi", Action: "cycle", Before: "on", After: "on", Result: "ok", DurationMS: 812, Run: "r1"}
	if err := j.Append(want); err != nil {
		t.Fatal(err)
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("journal mode %v, want 0600", st.Mode().Perm())
	}
	f, _ := os.Open(path)
	defer f.Close()
	got, errs := Read(f)
	if len(errs) != 0 || len(got) != 1 {
		t.Fatalf("read %v, errors %v", got, errs)
	}
	want.PID = os.Getpid()
	if got[0] != want {
		t.Fatalf("got %+v\nwant %+v", got[0], want)
	}
}

// Many writers in several processes: every line arrives whole.
func TestConcurrentProcessesNeverInterleave(t *testing.T) {
	if os.Getenv("JOURNAL_CHILD") != "" {
		j, err := Open(os.Getenv("JOURNAL_PATH"), false)
		if err != nil {
			os.Exit(3)
		}
		id := os.Getenv("JOURNAL_CHILD")
		var wg sync.WaitGroup
		for g := 0; g < 4; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < 50; i++ {
					_ = j.Append(Entry{Host: fmt.Sprintf("h-%s-%d-%d", id, g, i), Reason: strings.Repeat("x", 3000), Result: "ok"})
				}
			}()
		}
		wg.Wait()
		j.Close()
		os.Exit(0)
	}
	path := filepath.Join(t.TempDir(), "audit.log")
	var cmds []*exec.Cmd
	for p := 0; p < 3; p++ {
		c := exec.Command(os.Args[0], "-test.run=^TestConcurrentProcessesNeverInterleave$")
		c.Env = append(os.Environ(), "JOURNAL_CHILD="+strconv.Itoa(p), "JOURNAL_PATH="+path)
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		cmds = append(cmds, c)
	}
	for _, c := range cmds {
		if err := c.Wait(); err != nil {
			t.Fatal(err)
		}
	}
	f, _ := os.Open(path)
	defer f.Close()
	got, errs := Read(f)
	if len(errs) != 0 {
		t.Fatalf("torn lines: %v", errs[:min(3, len(errs))])
	}
	if len(got) != 3*4*50 {
		t.Fatalf("%d entries, want %d", len(got), 3*4*50)
	}
	seen := map[string]bool{}
	for _, e := range got {
		if seen[e.Host] {
			t.Fatalf("duplicate %s", e.Host)
		}
		seen[e.Host] = true
	}
}

func TestReadReportsBadLines(t *testing.T) {
	in := `{"host":"a","action":"on","result":"ok"}
not json
{"host":"b","action":"off","result":"ok"}
`
	got, errs := Read(strings.NewReader(in))
	if len(got) != 2 || len(errs) != 1 || !strings.HasPrefix(errs[0].Error(), "line 2:") {
		t.Fatalf("got %v, errs %v", got, errs)
	}
}

func TestOperator(t *testing.T) {
	tests := []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"SUDO_USER": "alice", "USER": "root"}, "alice (via sudo)"},
		{map[string]string{"LOGNAME": "bob", "USER": "x"}, "bob"},
		{map[string]string{"USER": "carol"}, "carol"},
		{map[string]string{}, "uid " + strconv.Itoa(os.Getuid())},
	}
	for _, tt := range tests {
		if got := Operator(func(k string) string { return tt.env[k] }); got != tt.want {
			t.Errorf("Operator(%v) = %q, want %q", tt.env, got, tt.want)
		}
	}
}

func TestDefaultPath(t *testing.T) {
	env := map[string]string{"HOME": "/home/u"}
	if got := DefaultPath(func(k string) string { return env[k] }); got != "/home/u/.local/state/rmm/audit.log" {
		t.Errorf("got %s", got)
	}
	env["XDG_STATE_HOME"] = "/s"
	if got := DefaultPath(func(k string) string { return env[k] }); got != "/s/rmm/audit.log" {
		t.Errorf("got %s", got)
	}
}
