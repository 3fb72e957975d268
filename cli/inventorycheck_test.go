package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestInventoryCheck(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte(`version: 1
credentials:
  demo: {user: a, password: x}
groups:
  db: {}
hosts:
  - name: db1
    bmc: db1.example.com
    credentials: demo
    groups: [dbb]
  - name: db2
    bmc: 10.0.0.2
    bmc: 10.0.0.3
    credentials: demo
`), 0o644)
	warnOnly := filepath.Join(dir, "warn.yaml")
	os.WriteFile(warnOnly, []byte(`version: 1
credentials:
  demo: {user: a, password: x}
hosts:
  - {name: db1, bmc: 10.0.0.1, credentials: demo, protocols: ipmi}
`), 0o644)
	tests := []struct {
		name   string
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{"errors and warnings, all at once", []string{"inventory", "check", "-i", bad}, ExitInventory,
			bad + ":3: warning: credentials demo has a literal password: fine for a demo, but anyone who can read this file can use it; use password_env, password_file or password_command\n" +
				bad + ":8: bmc \"db1.example.com\" is a host name; rmm never uses DNS, write the BMC's IP address\n" +
				bad + ":10: unknown group \"dbb\" (did you mean \"db\"?); groups are declared under groups:\n" +
				bad + ":13: host: duplicate key \"bmc\" (first at line 12)\n",
			bad + ": 3 errors, 1 warning\n"},
		{"warnings only exit 0", []string{"-i", warnOnly, "inventory", "check"}, ExitOK,
			warnOnly + ":3: warning: credentials demo has a literal password: fine for a demo, but anyone who can read this file can use it; use password_env, password_file or password_command\n" +
				warnOnly + ":5: warning: db1 is in no group\n",
			warnOnly + ": 1 host, 0 groups, 0 errors, 2 warnings\n"},
		{"missing file", []string{"inventory", "check", "-i", filepath.Join(dir, "nope.yaml")}, ExitInventory, "",
			"rmm: read inventory: open " + filepath.Join(dir, "nope.yaml") + ": no such file or directory\n"},
		{"stray argument", []string{"inventory", "check", "-i", bad, "db1"}, ExitUsage, "",
			"rmm: rmm inventory check takes 0 argument(s), got 1: db1\nrun 'rmm inventory check --help' for usage\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := invRun(t, nil, tt.args...)
			if r.code != tt.code || r.stdout != tt.stdout || r.stderr != tt.stderr {
				t.Errorf("exit %d\nstdout:\n%s\nstderr:\n%s\nwant exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr, tt.code, tt.stdout, tt.stderr)
			}
		})
	}
}

// TestInventoryCheckDemo keeps the repository's example inventory valid:
// the only warnings it may have are the demo password and trust on first
// use for Redfish hosts (the simulator makes new certificates each run).
func TestInventoryCheckDemo(t *testing.T) {
	r := invRun(t, nil, "inventory", "check", "-i", "../inventory.yaml")
	if r.code != ExitOK {
		t.Fatalf("exit %d:\n%s%s", r.code, r.stdout, r.stderr)
	}
	for _, line := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
		if !strings.Contains(line, "literal password") && !strings.Contains(line, "no redfish.fingerprint pin") {
			t.Errorf("unexpected problem in the demo inventory: %s", line)
		}
	}
	if !strings.Contains(r.stderr, "35 hosts, 9 groups, 0 errors") {
		t.Errorf("summary = %q", r.stderr)
	}
}
