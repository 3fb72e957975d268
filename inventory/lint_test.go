package inventory

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestLint(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "inv.yaml")
	os.WriteFile(filepath.Join(dir, "ok.pass"), []byte("pw\n"), 0o600)
	os.WriteFile(filepath.Join(dir, "open.pass"), []byte("pw\n"), 0o644)
	os.Chmod(filepath.Join(dir, "open.pass"), 0o644)
	src := `version: 1
defaults: {credentials: prod, protocols: ipmi}
credentials:
  prod: {user: a, password_env: P}
  demo: {user: a, password: demo}
  okfile: {user: a, password_file: ok.pass}
  openfile: {user: a, password_file: open.pass}
  gone: {user: a, password_file: gone.pass}
  unused: {user: a, password_command: [pass, show, x]}
groups:
  db: {}
  lab: {redfish: {insecure: true}}
  empty: {}
hosts:
  - {name: db1, bmc: 10.0.0.1, groups: [db], credentials: demo}
  - {name: db2, bmc: 10.0.0.2, groups: [db], credentials: okfile}
  - {name: db3, bmc: 10.0.0.3, groups: [db], credentials: openfile}
  - {name: db4, bmc: 10.0.0.4, groups: [db], credentials: gone}
  - name: web[1-3]
    bmc: 10.0.1.[1-3]
    protocols: [redfish, ipmi]
  - {name: lab1, bmc: 10.0.2.1, groups: [lab], protocols: [redfish]}
  - name: pinned
    bmc: 10.0.3.1
    groups: [db]
    protocols: [redfish]
    redfish: {fingerprint: 3fa100112233445566778899aabbccddeeff00112233445566778899aabbccdd}
`
	inv, probs := Parse(file, []byte(src))
	if inv == nil {
		t.Fatal(problemStrings(probs))
	}
	got := problemStrings(inv.Lint())
	want := []string{
		file + ":5: warning: credentials demo has a literal password: fine for a demo, but anyone who can read this file can use it; use password_env, password_file or password_command",
		file + ":7: warning: credentials openfile: password file " + filepath.Join(dir, "open.pass") + " is open to group or others (mode 0644); run: chmod 600 " + filepath.Join(dir, "open.pass") + "; rmm will refuse it",
		file + ":8: warning: credentials gone: password file " + filepath.Join(dir, "gone.pass") + " does not exist",
		file + ":9: warning: credentials unused is not used by any host",
		file + ":12: warning: redfish.insecure: true accepts any certificate, a man in the middle's too; pin redfish.fingerprint instead",
		file + ":13: warning: group empty has no hosts",
		file + ":19: warning: web[1-3] is in no group",
		file + ":19: warning: web[1-3] uses redfish with no redfish.fingerprint pin: its certificate is trusted on first use",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Lint:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// prod is used through defaults only by hosts that do not override it:
	// web[1-3] and lab1 use it, so it is not reported as unused.
}

func TestCheckWithErrorsSkipsHostWarnings(t *testing.T) {
	src := "version: 1\ncredentials:\n  demo: {user: a, password: x}\n  spare: {user: a, password_env: P}\nhosts:\n  - {name: db1, bmc: db1.example.com, credentials: demo}\n"
	got := problemStrings(Check("inv.yaml", []byte(src)))
	want := []string{
		"inv.yaml:3: warning: credentials demo has a literal password: fine for a demo, but anyone who can read this file can use it; use password_env, password_file or password_command",
		`inv.yaml:6: bmc "db1.example.com" is a host name; rmm never uses DNS, write the BMC's IP address`,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Check:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
