package cli

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/rmm-project/rmm/inventory"
)

func init() { register(newInventoryCmd) }

func newInventoryCmd(env *Env, g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "inventory",
		Short: "Work with the inventory file",
		Long: `Work with the inventory file: the static list of hosts and their BMC IP
addresses that every rmm command reads. See docs/inventory.md for the format.`,
		Example: `  rmm inventory check
  rmm -i fleet.yaml inventory check`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return cmd.Help() },
	}
	cmd.AddCommand(newInventoryCheckCmd(env, g))
	return cmd
}

// inventoryCheckOptions are rmm inventory check's dependencies.
type inventoryCheckOptions struct {
	env *Env
	g   *globalOptions
}

func newInventoryCheckCmd(env *Env, g *globalOptions) *cobra.Command {
	opts := &inventoryCheckOptions{env: env, g: g}
	return &cobra.Command{
		Use:   "check",
		Short: "Validate the inventory and warn about weak spots",
		Long: `Validate the inventory and report every problem at once, each as
file:line: message, like a compiler: errors (the file cannot be used) and
warnings (it works, but look): literal passwords, redfish.insecure, Redfish
hosts without a certificate pin (trust on first use), password files that
are missing or readable by others, credential sets and groups no host uses,
hosts in no group.

Problems go to stdout, one per line; a summary goes to stderr. It exits 3
when there are errors, 0 when there are only warnings. No BMC is contacted
and no password is read.`,
		Example: `  rmm inventory check
  rmm inventory check -i staging.yaml
  rmm inventory check 2>/dev/null | grep -v warning:`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error { return inventoryCheckRun(opts) },
	}
}

func inventoryCheckRun(opts *inventoryCheckOptions) error {
	path, err := inventoryPath(opts.env, opts.g)
	if err != nil {
		return &ExitError{Code: ExitInventory, Err: err}
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return &ExitError{Code: ExitInventory, Err: fmt.Errorf("read inventory: %w", err)}
	}
	probs := inventory.Check(path, data)
	errs, warns := 0, 0
	for _, p := range probs {
		if p.Warning {
			warns++
		} else {
			errs++
		}
		fmt.Fprintln(opts.env.IO.Out, p.String())
	}
	summary := fmt.Sprintf("%s: %s, %s", path, plural(errs, "error"), plural(warns, "warning"))
	if errs == 0 {
		if inv, _ := inventory.Parse(path, data); inv != nil {
			summary = fmt.Sprintf("%s: %s, %s, %s, %s", path, plural(len(inv.Hosts), "host"), plural(len(inv.Groups), "group"), plural(errs, "error"), plural(warns, "warning"))
		}
	}
	fmt.Fprintln(opts.env.IO.ErrOut, summary)
	if errs > 0 {
		return silentExit(ExitInventory)
	}
	return nil
}

func plural(n int, noun string) string {
	if n == 1 {
		return fmt.Sprintf("1 %s", noun)
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
