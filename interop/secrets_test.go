package interop

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// argvWatch samples every process's command line (/proc/*/cmdline) as fast
// as it can while it runs, remembering any that holds the password, and
// which markers (strings of the command lines of rmm and its children) it
// saw: proof that it sees short-lived children at all.
type argvWatch struct {
	password []byte
	markers  []string
	stop     chan struct{}
	done     chan struct{}
	scans    atomic.Int64

	mu    sync.Mutex
	leaks []string
	seen  map[string]string // marker -> a command line that had it
}

func watchArgv(password string, markers ...string) *argvWatch {
	w := &argvWatch{password: []byte(password), markers: markers, stop: make(chan struct{}), done: make(chan struct{}), seen: map[string]string{}}
	self := fmt.Sprint(os.Getpid())
	go func() {
		defer close(w.done)
		for {
			select {
			case <-w.stop:
				return
			default:
			}
			ents, _ := os.ReadDir("/proc")
			for _, e := range ents {
				if e.Name() == self || e.Name()[0] < '0' || e.Name()[0] > '9' {
					continue
				}
				b, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
				if err != nil || len(b) == 0 {
					continue
				}
				args := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
				w.mu.Lock()
				if bytes.Contains(b, w.password) {
					w.leaks = append(w.leaks, fmt.Sprintf("pid %s: %s", e.Name(), strings.ReplaceAll(strings.Join(args, " "), password, "<PASSWORD>")))
				}
				line := strings.Join(args, " ")
				for _, m := range w.markers {
					if _, ok := w.seen[m]; !ok && strings.Contains(line, m) {
						w.seen[m] = line
					}
				}
				w.mu.Unlock()
			}
			w.scans.Add(1)
		}
	}()
	return w
}

func (w *argvWatch) finish() (leaks []string, seen map[string]string) {
	close(w.stop)
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.leaks, w.seen
}

// filesWith returns the files under dir that contain s.
func filesWith(t *testing.T, dir, s string) []string {
	t.Helper()
	var hits []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !d.Type().IsRegular() {
			return err
		}
		b, err := os.ReadFile(p)
		if err == nil && bytes.Contains(b, []byte(s)) {
			hits = append(hits, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return hits
}

// TestSecrets runs rmm's commands through the binary, over every
// credential source (environment, a 0600 file, a password command) and
// every path that starts a child (the ipmitool fallback, the password
// command), and looks for the password everywhere it could leak: stdout
// and stderr (runBinary checks every run), JSON output, the audit journal,
// the health state file, known_bmcs and everything else rmm wrote, and
// every process's argv, sampled continuously while rmm runs.
func TestSecrets(t *testing.T) {
	t.Parallel()
	secrets := t.TempDir() // outside rmm's HOME and state: scanned apart
	pwFile := filepath.Join(secrets, "bmc.pass")
	if err := os.WriteFile(pwFile, []byte(simPassword+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	f := newFleet(t, nil,
		fhost{name: "env1"},
		fhost{name: "tool1", protocols: "[ipmitool]"},
		fhost{name: "rf1", protocols: "[redfish]", vendor: "dell"},
		fhost{name: "cmd1", extra: "    credentials: cmd"},
		fhost{name: "file1", extra: "    credentials: file"},
	)
	// The password command sleeps so the argv sampler surely sees it (and
	// so proves it can see a short-lived child).
	f.writeInventory(fmt.Sprintf(`credentials:
  t: {user: %s, password_env: %s}
  cmd: {user: %s, password_command: [sh, -c, 'sleep 0.3; cat "$0"', %s]}
  file: {user: %s, password_file: %s}
`, simUser, passwordEnv, simUser, pwFile, simUser, pwFile))

	commands := [][]string{
		{"power", "status", "all", "-o", "json"},
		{"power", "status", "all"},
		{"power", "cycle", "tool1,cmd1,file1", "--yes", "--wait", "-o", "json"},
		{"known-bmcs", "-o", "json"},
		{"journal", "-o", "json"},
		{"list", "-o", "json"},
		{"power", "cycle", "all", "--dry-run"},
	}
	for _, c := range [][]string{
		// bmclib's ipmitool provider does power only.
		{"sel", "all,-tool1", "-o", "json"},
		{"health", "all", "-o", "json"},
		{"audit", "all", "-o", "json"},
		{"console", "env1", "--capture", "1s"},
	} {
		if hasCommand(c[0]) {
			commands = append(commands, c)
		} else {
			t.Logf("rmm %s does not exist yet: not scanned", c[0])
		}
	}
	// What the sampler must see: rmm itself, the password command (by
	// its file argument) and the ipmitool child (by its BMC address).
	markers := []string{rmmBin + " -i " + f.inv, pwFile, "-H " + f.addr("tool1")}
	w := watchArgv(simPassword, markers...)
	var outputs strings.Builder
	for _, args := range commands {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		r := f.bin(ctx, args...)
		cancel()
		if r.code != 0 && args[0] != "health" {
			t.Errorf("rmm %s: %s", strings.Join(args, " "), r)
		}
		outputs.WriteString(r.stdout + r.stderr)
	}
	leaks, seen := w.finish()
	for _, l := range leaks {
		t.Errorf("the password is on a process's command line: %s", l)
	}
	// The sampler must have seen the children, or it proves nothing.
	var lines []string
	for _, m := range markers {
		if seen[m] == "" {
			t.Errorf("the argv sampler never saw a command line with %q in %d scans: it cannot vouch for children's argv", m, w.scans.Load())
		}
		lines = append(lines, seen[m])
	}
	t.Logf("argv sampler: %d scans; command lines seen include:\n%s", w.scans.Load(), strings.Join(lines, "\n"))

	// Every file rmm wrote (journal, known_bmcs, health state, ...).
	var written []string
	_ = filepath.WalkDir(f.dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			written = append(written, strings.TrimPrefix(p, f.dir+"/"))
		}
		return nil
	})
	for _, p := range filesWith(t, f.dir, simPassword) {
		t.Errorf("the password is in %s", p)
	}
	for _, want := range []string{"state/rmm/audit.log", "state/rmm/known_bmcs"} {
		if !strings.Contains(strings.Join(written, " "), want) {
			t.Errorf("rmm did not write %s, so it was not scanned (files: %v)", want, written)
		}
	}
	// The file scan can find the password where it is.
	if hits := filesWith(t, secrets, simPassword); len(hits) != 1 {
		t.Errorf("the file scan does not find the password in its own file: %v", hits)
	}
	t.Logf("files scanned: %v", written)
	if !strings.Contains(outputs.String(), "env1") {
		t.Errorf("no output to scan")
	}
}

// TestSecretsLoosePasswordFile: a password file open to group or others is
// refused, end to end, with the fix in the message, and the host is not
// contacted with it.
func TestSecretsLoosePasswordFile(t *testing.T) {
	t.Parallel()
	for _, mode := range []os.FileMode{0o644, 0o640, 0o604} {
		t.Run(fmt.Sprintf("mode %04o", mode), func(t *testing.T) {
			t.Parallel()
			pwFile := filepath.Join(t.TempDir(), "bmc.pass")
			if err := os.WriteFile(pwFile, []byte(simPassword+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(pwFile, mode); err != nil {
				t.Fatal(err)
			}
			f := newFleet(t, nil, fhost{name: "file1", extra: "    credentials: file"})
			f.writeInventory(fmt.Sprintf("credentials:\n  t: {user: %s, password_env: %s}\n  file: {user: %s, password_file: %s}\n", simUser, passwordEnv, simUser, pwFile))
			before := f.host("file1").IPMI.Stats().PacketsReceived
			r := f.bin(context.Background(), "power", "status", "file1", "-o", "json")
			row := powerRows(t, r)["file1"]
			if r.code == 0 || row.Result == "ok" {
				t.Fatalf("a password file with mode %04o was used: %s", mode, r)
			}
			for _, w := range []string{"refusing", pwFile, fmt.Sprintf("%04o", mode), "chmod 600"} {
				if !strings.Contains(r.stderr, w) {
					t.Errorf("the refusal does not say %q:\n%s", w, r.stderr)
				}
			}
			if n := f.host("file1").IPMI.Stats().PacketsReceived - before; n != 0 {
				t.Errorf("rmm sent %d packets to the BMC after refusing the credentials", n)
			}
		})
	}
}
