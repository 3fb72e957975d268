package cli

import (
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/rmm-project/rmm/inventory"
)

func init() { register(newCompletionCmd) }

func newCompletionCmd(env *Env, g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "completion bash|zsh|fish",
		Short: "Print a shell completion script",
		Long: `Print a completion script for bash, zsh or fish.

Completion is dynamic: host names, groups (@db) and labels (site=ams) come
from the inventory at the moment you press TAB, honouring -i given earlier
on the command line and $RMM_INVENTORY. It reads only the inventory file,
never prints errors into your shell, and offers nothing when the inventory
cannot be read.`,
		Example: `  # bash, for this shell:
  source <(rmm completion bash)
  # bash, for good:
  rmm completion bash | sudo tee /etc/bash_completion.d/rmm
  # zsh (compinit must be on):
  rmm completion zsh > "${fpath[1]}/_rmm"
  # fish:
  rmm completion fish > ~/.config/fish/completions/rmm.fish`,
		ValidArgs: []string{"bash", "zsh", "fish"},
		Args:      exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			out := env.IO.Out
			root := cmd.Root()
			switch args[0] {
			case "bash":
				return root.GenBashCompletionV2(out, true)
			case "zsh":
				return root.GenZshCompletion(out)
			case "fish":
				return root.GenFishCompletion(out, true)
			}
			return usageErrorf("unknown shell %q: use bash, zsh or fish", args[0])
		},
	}
}

// completeSelector returns a ValidArgsFunction that completes host
// selectors from the inventory: host names, all, @groups and label=value
// pairs, also after a comma and after an exclusion (! or -). Every command
// that takes a selector uses it.
//
// It must be fast and silent: it loads the inventory like any command (so
// -i earlier on the line and $RMM_INVENTORY count) and, on any problem,
// offers nothing rather than an error.
func completeSelector(env *Env, g *globalOptions) func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
		inv, err := loadInventory(env, g)
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		// Complete the last term of a comma list, keeping what precedes it
		// and any exclusion mark.
		prefix, term := "", toComplete
		if i := strings.LastIndexByte(toComplete, ','); i >= 0 {
			prefix, term = toComplete[:i+1], toComplete[i+1:]
		}
		if term != "" && (term[0] == '!' || (term[0] == '-' && prefix != "")) {
			prefix, term = prefix+term[:1], term[1:]
		}
		var out []string
		add := func(s, desc string) {
			if strings.HasPrefix(s, term) {
				if desc != "" {
					s += "\t" + desc
				}
				out = append(out, prefix+s)
			}
		}
		switch {
		case strings.HasPrefix(term, "@"):
			for _, name := range sortedKeys(inv.Groups) {
				add("@"+name, inv.Groups[name].Description)
			}
		case strings.Contains(term, "="):
			for _, pair := range labelPairs(inv.Hosts) {
				add(pair, "")
				if k, v, ok := strings.Cut(pair, "="); ok {
					add(k+"!="+v, "")
				}
			}
		default:
			add("all", "every host")
			for _, h := range inv.Hosts {
				add(h.Name, h.Addr.String())
			}
			if term == "" || len(out) == 0 {
				for _, name := range sortedKeys(inv.Groups) {
					add("@"+name, inv.Groups[name].Description)
				}
			}
			if len(out) == 0 {
				for _, pair := range labelPairs(inv.Hosts) {
					add(pair, "")
				}
			}
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// labelPairs lists every key=value in use, sorted.
func labelPairs(hosts []*inventory.Host) []string {
	seen := map[string]bool{}
	var out []string
	for _, h := range hosts {
		for k, v := range h.Labels {
			p := k + "=" + v
			if !seen[p] {
				seen[p] = true
				out = append(out, p)
			}
		}
	}
	sort.Strings(out)
	return out
}
