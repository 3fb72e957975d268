package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// complete asks cobra's hidden __complete command, as the shell scripts do,
// and returns the candidates (without descriptions) and the directive line.
func complete(t *testing.T, env map[string]string, args ...string) ([]string, string, invResult) {
	t.Helper()
	r := invRun(t, env, append([]string{cobra.ShellCompNoDescRequestCmd}, args...)...)
	lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
	if len(lines) == 0 || !strings.HasPrefix(lines[len(lines)-1], ":") {
		t.Fatalf("no directive in %q", r.stdout)
	}
	return lines[:len(lines)-1], lines[len(lines)-1], r
}

func TestCompletion(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		args []string
		want []string
	}{
		{"host names with -i before the command", nil, []string{"-i", fleetYAML, "list", "we"}, []string{"web01", "web02", "web03"}},
		{"-i after the command", nil, []string{"list", "-i", fleetYAML, "db"}, []string{"db1", "db2"}},
		{"from RMM_INVENTORY", map[string]string{"RMM_INVENTORY": fleetYAML}, []string{"list", "v"}, []string{"v6"}},
		{"empty word offers all, hosts and groups", nil, []string{"-i", fleetYAML, "hosts", ""},
			[]string{"all", "db1", "db2", "web01", "web02", "web03", "v6", "@ams", "@db", "@fra", "@web"}},
		{"groups", nil, []string{"-i", fleetYAML, "list", "@"}, []string{"@ams", "@db", "@fra", "@web"}},
		{"group prefix", nil, []string{"-i", fleetYAML, "list", "@w"}, []string{"@web"}},
		{"label pairs", nil, []string{"-i", fleetYAML, "list", "site="}, []string{"site=ams", "site=fra"}},
		{"labels when nothing else matches", nil, []string{"-i", fleetYAML, "list", "ro"}, []string{"role=db", "role=web"}},
		{"after a comma", nil, []string{"-i", fleetYAML, "list", "db1,we"}, []string{"db1,web01", "db1,web02", "db1,web03"}},
		{"after an exclusion", nil, []string{"-i", fleetYAML, "list", "all,!@d"}, []string{"all,!@db"}},
		{"after a - exclusion", nil, []string{"-i", fleetYAML, "list", "@web,-web0"}, []string{"@web,-web01", "@web,-web02", "@web,-web03"}},
		{"output flag values", nil, []string{"-i", fleetYAML, "list", "-o", ""}, []string{"table", "json", "csv"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, directive, r := complete(t, tt.env, tt.args...)
			if strings.Join(got, " ") != strings.Join(tt.want, " ") {
				t.Errorf("candidates %q, want %q", got, tt.want)
			}
			if directive != ":4" { // ShellCompDirectiveNoFileComp
				t.Errorf("directive %s, want :4 (no file completion)", directive)
			}
			if r.code != 0 {
				t.Errorf("exit %d", r.code)
			}
		})
	}
}

func TestCompletionDescriptions(t *testing.T) {
	r := invRun(t, nil, cobra.ShellCompRequestCmd, "-i", fleetYAML, "list", "@d")
	if !strings.HasPrefix(r.stdout, "@db\tdatabases\n") {
		t.Errorf("stdout %q: want the group with its description", r.stdout)
	}
	r = invRun(t, nil, cobra.ShellCompRequestCmd, "-i", fleetYAML, "list", "db1")
	if !strings.HasPrefix(r.stdout, "db1\t127.0.50.11\n") {
		t.Errorf("stdout %q: want the host with its BMC address", r.stdout)
	}
}

// TestCompletionSilentOnErrors: a broken or missing inventory must offer
// nothing, and print nothing the shell would show or insert.
func TestCompletionSilentOnErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("version: 1\nhosts:\n  - name: db1\n    bmc: db1.example.com\n"), 0o644)
	for _, inv := range []string{bad, filepath.Join(dir, "missing.yaml")} {
		t.Run(filepath.Base(inv), func(t *testing.T) {
			got, directive, r := complete(t, nil, "-i", inv, "list", "d")
			if len(got) != 0 || directive != ":4" {
				t.Errorf("got %q %s, want nothing", got, directive)
			}
			if strings.Contains(r.stdout, "rmm:") || strings.Contains(r.stderr, "rmm:") || strings.Contains(r.stderr, "db1.example.com") {
				t.Errorf("error text leaked into completion output: stdout %q stderr %q", r.stdout, r.stderr)
			}
		})
	}
}

func TestCompletionScripts(t *testing.T) {
	tests := []struct {
		shell, want string
	}{
		{"bash", "__start_rmm"},
		{"zsh", "#compdef rmm"},
		{"fish", "complete -c rmm"},
	}
	for _, tt := range tests {
		t.Run(tt.shell, func(t *testing.T) {
			r := invRun(t, nil, "completion", tt.shell)
			if r.code != 0 || !strings.Contains(r.stdout, tt.want) || !strings.Contains(r.stdout, "__complete") {
				t.Errorf("exit %d, script lacks %q or dynamic completion:\n%.300s", r.code, tt.want, r.stdout)
			}
		})
	}
	r := invRun(t, nil, "completion", "tcsh")
	if r.code != ExitUsage || r.stderr != "rmm: unknown shell \"tcsh\": use bash, zsh or fish\n" {
		t.Errorf("tcsh: exit %d, stderr %q", r.code, r.stderr)
	}
	r = invRun(t, nil, "completion")
	if r.code != ExitUsage {
		t.Errorf("no shell: exit %d, want %d", r.code, ExitUsage)
	}
}
