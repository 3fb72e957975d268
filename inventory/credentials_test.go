package inventory

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rmm-project/rmm/secret"
)

// secretText is the password every credential test uses; no error text may
// ever contain it.
const secretText = "s3cr3t-Pa55-do-not-leak"

// credSet parses one credential set from YAML, as the loader would.
func credSet(t *testing.T, dir, spec string) *CredentialSet {
	t.Helper()
	src := "version: 1\ncredentials:\n  c: " + spec + "\nhosts:\n  - {name: h1, bmc: 10.0.0.1, credentials: c}\n"
	inv, probs := Parse(filepath.Join(dir, "inventory.yaml"), []byte(src))
	if inv == nil {
		t.Fatalf("parse %s: %v", spec, problemStrings(probs))
	}
	return inv.Credentials["c"]
}

func TestResolve(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil { // umask-proof
			t.Fatal(err)
		}
		return p
	}
	write("ok.pass", secretText+"\nsecond line ignored\n", 0o600)
	write("crlf.pass", secretText+"\r\n", 0o400)
	write("open.pass", secretText+"\n", 0o644)
	write("group.pass", secretText+"\n", 0o640)
	write("empty.pass", "\n", 0o600)
	env := map[string]string{"RMM_TEST_PW": secretText}
	getenv := func(k string) string { return env[k] }

	tests := []struct {
		name    string
		spec    string
		want    string // password, when ok
		wantErr string // substring of the error, when not
		source  string
	}{
		{name: "env", spec: "{user: admin, password_env: RMM_TEST_PW}", want: secretText, source: "env RMM_TEST_PW"},
		{name: "env unset", spec: "{user: admin, password_env: RMM_TEST_UNSET}", wantErr: "credentials c: environment variable RMM_TEST_UNSET is not set"},
		{name: "file 0600", spec: "{user: admin, password_file: ok.pass}", want: secretText, source: "file " + filepath.Join(dir, "ok.pass")},
		{name: "file 0400 with CRLF", spec: "{user: admin, password_file: crlf.pass}", want: secretText},
		{name: "file 0644 refused", spec: "{user: admin, password_file: open.pass}", wantErr: "refusing password file " + filepath.Join(dir, "open.pass") + " is open to group or others (mode 0644); run: chmod 600 "},
		{name: "file 0640 refused", spec: "{user: admin, password_file: group.pass}", wantErr: "(mode 0640)"},
		{name: "file missing", spec: "{user: admin, password_file: /nonexistent/rmm.pass}", wantErr: "credentials c: password file: stat /nonexistent/rmm.pass: no such file or directory"},
		{name: "file empty", spec: "{user: admin, password_file: empty.pass}", wantErr: "is empty (its first line is the password)"},
		{name: "file is a directory", spec: "{user: admin, password_file: " + dir + "}", wantErr: "is not a regular file"},
		{name: "command", spec: "{user: admin, password_command: [sh, -c, 'echo " + secretText + "; echo more']}", want: secretText, source: "command sh -c \"echo " + secretText + "; echo more\""},
		{name: "command failing hides stderr", spec: "{user: admin, password_command: [sh, -c, 'echo " + secretText + " >&2; exit 3']}",
			wantErr: "failed (exit status 3); its stderr (24 bytes) is not shown because it may hold secrets: run the command yourself to see it"},
		{name: "command printing nothing", spec: "{user: admin, password_command: [true]}", wantErr: "credentials c: password command true printed nothing on its first line of output"},
		{name: "command not found", spec: "{user: admin, password_command: [/nonexistent/pass, show]}", wantErr: "credentials c: password command /nonexistent/pass show: fork/exec /nonexistent/pass: no such file or directory"},
		{name: "command too slow", spec: "{user: admin, password_command: [sleep, '30'], timeout: 200ms}", wantErr: "credentials c: password command sleep 30 did not finish within 200ms and was killed (a password manager waiting for input?)"},
		{name: "literal", spec: "{user: admin, password: " + secretText + "}", want: secretText, source: "literal (demo only)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := credSet(t, dir, tt.spec)
			var registered []secret.Value
			c.Getenv = getenv
			c.OnResolve = func(v secret.Value) { registered = append(registered, v) }
			start := time.Now()
			user, pass, err := c.Resolve(context.Background())
			if d := time.Since(start); d > 10*time.Second {
				t.Errorf("Resolve took %s: not bounded", d)
			}
			if tt.source != "" && c.Source() != tt.source {
				t.Errorf("Source() = %q, want %q", c.Source(), tt.source)
			}
			if tt.wantErr != "" {
				if err == nil {
					t.Fatalf("Resolve succeeded, want error containing %q", tt.wantErr)
				}
				if !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("error %q\ndoes not contain %q", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), secretText) && !strings.Contains(tt.spec, "echo") {
					t.Errorf("error leaks the secret: %q", err)
				}
				if len(registered) != 0 {
					t.Error("OnResolve called for a failure")
				}
				return
			}
			if err != nil {
				t.Fatalf("Resolve: %v", err)
			}
			if user != "admin" || pass.Reveal() != tt.want {
				t.Errorf("Resolve = %q, %q; want admin, %q", user, pass.Reveal(), tt.want)
			}
			if len(registered) != 1 || registered[0].Reveal() != tt.want {
				t.Errorf("OnResolve got %d values, want the password once", len(registered))
			}
		})
	}
}

// TestResolveNeverLeaks runs failing sources whose output is the secret and
// checks the error text only says what failed.
func TestResolveNeverLeaks(t *testing.T) {
	dir := t.TempDir()
	specs := []string{
		"{user: admin, password_command: [sh, -c, 'echo " + secretText + "; echo " + secretText + " >&2; exit 1']}",
		"{user: admin, password_command: [sh, -c, 'echo " + secretText + "; sleep 30'], timeout: 100ms}",
	}
	p := filepath.Join(dir, "open.pass")
	os.WriteFile(p, []byte(secretText), 0o666)
	os.Chmod(p, 0o666)
	specs = append(specs, "{user: admin, password_file: open.pass}")
	for _, spec := range specs {
		t.Run(spec, func(t *testing.T) {
			c := credSet(t, dir, spec)
			_, _, err := c.Resolve(context.Background())
			if err == nil {
				t.Fatal("want an error")
			}
			// The argv is in the inventory and may be shown; the output
			// must not be. Compare with the argv removed.
			msg := strings.ReplaceAll(err.Error(), quoteArgv(c.argv), "ARGV")
			if strings.Contains(msg, secretText) {
				t.Errorf("error leaks the secret: %q", err)
			}
		})
	}
}

func TestResolveCachesAndIsConcurrent(t *testing.T) {
	dir := t.TempDir()
	counter := filepath.Join(dir, "runs")
	c := credSet(t, dir, "{user: admin, password_command: [sh, -c, 'echo x >> "+counter+"; echo "+secretText+"']}")
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, pass, err := c.Resolve(context.Background())
			if err == nil && pass.Reveal() != secretText {
				err = errors.New("wrong password")
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	runs, _ := os.ReadFile(counter)
	if n := strings.Count(string(runs), "x"); n != 1 {
		t.Errorf("password command ran %d times, want once per process", n)
	}
}

func TestResolveFailureCachedButNotCancellation(t *testing.T) {
	dir := t.TempDir()
	counter := filepath.Join(dir, "runs")
	c := credSet(t, dir, "{user: admin, password_command: [sh, -c, 'echo x >> "+counter+"; exit 1']}")
	for i := 0; i < 3; i++ {
		if _, _, err := c.Resolve(context.Background()); err == nil {
			t.Fatal("want error")
		}
	}
	runs, _ := os.ReadFile(counter)
	if n := strings.Count(string(runs), "x"); n != 1 {
		t.Errorf("failing command ran %d times, want once", n)
	}

	c2 := credSet(t, dir, "{user: admin, password_env: RMM_TEST_LATER}")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	c2.Getenv = func(string) string { return secretText }
	// Hold the set busy so Resolve must wait, then see the cancelled ctx.
	c2.once.Do(func() { c2.sem = make(chan struct{}, 1) })
	c2.sem <- struct{}{}
	if _, _, err := c2.Resolve(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	<-c2.sem
	if _, pass, err := c2.Resolve(context.Background()); err != nil || pass.Reveal() != secretText {
		t.Errorf("after a cancelled call: %v; the cancellation must not be cached", err)
	}
}
