package cli

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// Help is part of the product: every command has a Short, a Long and an
// Example, and rmm --help lists the exit codes.
func TestEveryCommandHasHelp(t *testing.T) {
	root := newRootCmd(&Env{IO: Test(nil, nil, nil)})
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if c.Hidden || c.Name() == "help" {
			return
		}
		t.Run(c.CommandPath(), func(t *testing.T) {
			if c.Short == "" {
				t.Error("no Short")
			}
			if strings.HasSuffix(c.Short, ".") {
				t.Errorf("Short ends with a period: %q", c.Short)
			}
			if c.Runnable() {
				if len(c.Long) < 80 {
					t.Errorf("Long is missing or too short (%d chars)", len(c.Long))
				}
				if c.Example == "" {
					t.Error("no Example")
				}
			}
		})
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
}

func TestRootHelpListsExitCodes(t *testing.T) {
	var out bytes.Buffer
	code := Main(context.Background(), []string{"--help"}, &Env{IO: Test(nil, &out, &out)})
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	for _, w := range []string{"Exit codes:", "130", "Nagios", "power", "list"} {
		if !strings.Contains(out.String(), w) {
			t.Errorf("rmm --help lacks %q", w)
		}
	}
}

func TestUsageErrorsExitTwo(t *testing.T) {
	tests := [][]string{
		{"power"},
		{"power", "explode", "db1"},
		{"list", "--no-such-flag"},
		{"power", "status", "x", "--timeout", "-1s"},
	}
	for _, args := range tests {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			var out, errb bytes.Buffer
			code := Main(context.Background(), args, &Env{IO: Test(nil, &out, &errb), Getenv: func(string) string { return "" }})
			if code != ExitUsage {
				t.Fatalf("exit %d, want %d\n%s", code, ExitUsage, errb.String())
			}
			if !strings.HasPrefix(errb.String(), "rmm: ") {
				t.Errorf("stderr %q does not start with 'rmm: '", errb.String())
			}
		})
	}
}
