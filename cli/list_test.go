package cli

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// update rewrites golden files: go test ./cli -run Golden -update
var update = flag.Bool("update", false, "rewrite golden files under testdata")

// checkGolden compares got with testdata/name, or rewrites it with -update.
func checkGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("output differs from %s (run with -update if the change is intended):\n--- got\n%s--- want\n%s", path, got, want)
	}
}

// invResult is what one in-process rmm run printed and returned.
type invResult struct {
	code           int
	stdout, stderr string
}

// invRun runs rmm in-process with the given environment (nothing else of
// the real environment is visible).
func invRun(t testing.TB, env map[string]string, args ...string) invResult {
	t.Helper()
	var out, errOut bytes.Buffer
	code := Main(context.Background(), args, &Env{
		IO:     Test(strings.NewReader(""), &out, &errOut),
		Getenv: func(k string) string { return env[k] },
	})
	return invResult{code: code, stdout: out.String(), stderr: errOut.String()}
}

const fleetYAML = "testdata/fleet.yaml"

func TestListGolden(t *testing.T) {
	tests := []struct {
		golden string
		args   []string
	}{
		{"list_table.golden", []string{"list", "-i", fleetYAML}},
		{"list_csv.golden", []string{"list", "-i", fleetYAML, "-o", "csv"}},
		{"list_json.golden", []string{"list", "-i", fleetYAML, "-o", "json"}},
		{"list_selector.golden", []string{"-i", fleetYAML, "list", "@web,!web02", "v6"}},
	}
	for _, tt := range tests {
		t.Run(tt.golden, func(t *testing.T) {
			r := invRun(t, nil, tt.args...)
			if r.code != ExitOK || r.stderr != "" {
				t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
			}
			checkGolden(t, tt.golden, []byte(r.stdout))
		})
	}
}

func TestListErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("version: 1\ncredentials:\n  c: {user: a, password_env: P}\nhosts:\n  - name: db1\n    bmc: db1.example.com\n    credentials: c\n  - name: db2\n    bmc: 10.0.0.2\n    credentials: nope\n"), 0o644)
	tests := []struct {
		name   string
		env    map[string]string
		args   []string
		code   int
		stderr string
	}{
		{"unknown host", nil, []string{"list", "-i", fleetYAML, "db3"}, ExitUsage,
			"rmm: no host named \"db3\"; did you mean db1?\n"},
		{"bad range", nil, []string{"list", "-i", fleetYAML, "web[01-04]"}, ExitUsage,
			"rmm: range \"web[01-04]\" includes web04, which is not in the inventory\n"},
		{"unknown format", nil, []string{"list", "-i", fleetYAML, "-o", "yaml"}, ExitUsage,
			"rmm: unknown output format \"yaml\": use one of table, json, csv\n"},
		{"invalid inventory lists every problem", nil, []string{"list", "-i", bad}, ExitInventory,
			"rmm: inventory " + bad + " is invalid (2 errors):\n" +
				bad + ":6: bmc \"db1.example.com\" is a host name; rmm never uses DNS, write the BMC's IP address\n" +
				bad + ":10: unknown credentials \"nope\"\n"},
		{"missing inventory file", nil, []string{"list", "-i", filepath.Join(dir, "nope.yaml")}, ExitInventory,
			"rmm: read inventory: open " + filepath.Join(dir, "nope.yaml") + ": no such file or directory\n"},
		{"no inventory anywhere", nil, []string{"list"}, ExitInventory,
			"rmm: no inventory found: give -i FILE, set $RMM_INVENTORY, or create ./inventory.yaml or /etc/rmm/inventory.yaml\n"},
		{"RMM_INVENTORY is used", map[string]string{"RMM_INVENTORY": bad}, []string{"list"}, ExitInventory,
			"rmm: inventory " + bad + " is invalid (2 errors):\n" +
				bad + ":6: bmc \"db1.example.com\" is a host name; rmm never uses DNS, write the BMC's IP address\n" +
				bad + ":10: unknown credentials \"nope\"\n"},
	}
	if _, err := os.Stat("/etc/rmm/inventory.yaml"); err == nil {
		tests = tests[:len(tests)-2] // this machine has a system inventory
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := invRun(t, tt.env, tt.args...)
			if r.code != tt.code || r.stderr != tt.stderr || r.stdout != "" {
				t.Errorf("exit %d, stdout %q, stderr:\n%s\nwant exit %d, stderr:\n%s", r.code, r.stdout, r.stderr, tt.code, tt.stderr)
			}
		})
	}
}

func TestInventoryPathPrecedence(t *testing.T) {
	dir := t.TempDir()
	write := func(name, host string) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte("version: 1\ncredentials: {c: {user: a, password_env: P}}\nhosts:\n  - {name: "+host+", bmc: 10.0.0.1, credentials: c}\n"), 0o644)
		return p
	}
	flagFile := write("flag.yaml", "fromflag")
	envFile := write("env.yaml", "fromenv")
	write("inventory.yaml", "fromcwd")
	t.Chdir(dir)
	tests := []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"flag beats env", map[string]string{"RMM_INVENTORY": envFile}, []string{"list", "-i", flagFile, "-o", "csv"}, "fromflag"},
		{"long flag", nil, []string{"--inventory", flagFile, "list", "-o", "csv"}, "fromflag"},
		{"env beats cwd", map[string]string{"RMM_INVENTORY": envFile}, []string{"list", "-o", "csv"}, "fromenv"},
		{"cwd", nil, []string{"list", "-o", "csv"}, "fromcwd"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := invRun(t, tt.env, tt.args...)
			if r.code != 0 || !strings.Contains(r.stdout, "\n"+tt.want+",") {
				t.Errorf("exit %d, stdout %q, stderr %q; want host %s", r.code, r.stdout, r.stderr, tt.want)
			}
		})
	}
}

// tenThousand writes an inventory of n explicit host entries (no ranges),
// like a large hand-maintained fleetYAML, and returns its path.
func tenThousand(tb testing.TB, n int) string {
	tb.Helper()
	var b strings.Builder
	b.WriteString("version: 1\ndefaults:\n  credentials: prod\n  protocols: [ipmi, redfish]\ncredentials:\n  prod: {user: admin, password_env: RMM_PROD_PASSWORD}\ngroups:\n")
	for g := 0; g < 20; g++ {
		fmt.Fprintf(&b, "  g%02d: {description: \"group %d\", labels: {role: r%d}}\n", g, g, g)
	}
	b.WriteString("  ams: {labels: {site: ams}}\n  fra: {labels: {site: fra}}\nhosts:\n")
	for i := 0; i < n; i++ {
		site := "ams"
		if i%2 == 1 {
			site = "fra"
		}
		fmt.Fprintf(&b, "  - name: node%05d\n    bmc: 10.%d.%d.%d\n    groups: [g%02d, %s]\n    labels: {rack: r%03d}\n", i, 1+i>>16, (i>>8)&255, i&255, i%20, site, i%400)
	}
	p := filepath.Join(tb.TempDir(), "big.yaml")
	if err := os.WriteFile(p, []byte(b.String()), 0o644); err != nil {
		tb.Fatal(err)
	}
	return p
}

// BenchmarkListTenThousand is rmm list on a 10,000-host inventory, end to
// end in-process (load, validate, select, render). The sub-benchmarks
// separate rendering: table goes through writeTable (tablewriter), csv and
// json do not.
func BenchmarkListTenThousand(b *testing.B) {
	path := tenThousand(b, 10000)
	for _, format := range []string{"csv", "json", "table"} {
		b.Run(format, func(b *testing.B) {
			for b.Loop() {
				code := Main(context.Background(), []string{"list", "-i", path, "-o", format}, &Env{IO: Test(strings.NewReader(""), io.Discard, io.Discard)})
				if code != 0 {
					b.Fatalf("exit %d", code)
				}
			}
		})
	}
	b.Run("load", func(b *testing.B) {
		g := &globalOptions{inventory: path}
		env := &Env{IO: Test(strings.NewReader(""), io.Discard, io.Discard)}
		for b.Loop() {
			if _, err := loadInventory(env, g); err != nil {
				b.Fatal(err)
			}
		}
	})
}
