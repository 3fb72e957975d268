package cli

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/rmm-project/rmm/inventory"
)

// inventoryPath decides which inventory file a command reads: -i, else
// $RMM_INVENTORY, else ./inventory.yaml, else /etc/rmm/inventory.yaml.
func inventoryPath(env *Env, g *globalOptions) (string, error) {
	return inventory.FindPath(g.inventory, env.getenv, func(p string) bool {
		_, err := os.Stat(p)
		return err == nil
	})
}

// loadInventory finds, reads and validates the inventory for a command. Any
// failure is an ExitInventory error; an invalid file lists every problem as
// file:line: message, so the whole fix is visible at once. Warnings are not
// failures and are not printed here (rmm inventory check shows them).
//
// Resolved passwords are registered with the output scrubbers, and
// password_env reads the environment through env, so tests can replace it.
func loadInventory(env *Env, g *globalOptions) (*inventory.Inventory, error) {
	path, err := inventoryPath(env, g)
	if err != nil {
		return nil, &ExitError{Code: ExitInventory, Err: err}
	}
	inv, err := inventory.Load(path)
	if err != nil {
		var le *inventory.LoadError
		if errors.As(err, &le) {
			errs := le.Errors()
			noun := "errors"
			if len(errs) == 1 {
				noun = "error"
			}
			return nil, &ExitError{Code: ExitInventory, Err: fmt.Errorf("inventory %s is invalid (%d %s):\n%w", path, len(errs), noun, le)}
		}
		return nil, &ExitError{Code: ExitInventory, Err: err}
	}
	inv.SetResolveHooks(env.getenv, env.IO.Scrub.Add)
	return inv, nil
}

// selectHosts applies a host selector; a bad selector is a usage error
// (exit 2) that names the term.
func selectHosts(inv *inventory.Inventory, args []string) ([]*inventory.Host, error) {
	hosts, err := inv.Select(args...)
	if err != nil {
		return nil, &ExitError{Code: ExitUsage, Err: err}
	}
	return hosts, nil
}

// orAll is the selector of a read-only command that defaults to every
// host. Commands that change state never call it: they require a selector,
// so a forgotten argument cannot reach the whole fleet.
func orAll(selector []string) []string {
	if len(selector) == 0 {
		return []string{"all"}
	}
	return selector
}

// joinComma joins for table cells and CSV.
func joinComma(s []string) string { return strings.Join(s, ",") }
