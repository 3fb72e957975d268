package cli

import (
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/rmm-project/rmm/inventory"
)

func init() { register(newListCmd) }

// listOptions are rmm list's flags and dependencies.
type listOptions struct {
	env      *Env
	g        *globalOptions
	output   string
	selector []string
}

func newListCmd(env *Env, g *globalOptions) *cobra.Command {
	opts := &listOptions{env: env, g: g}
	cmd := &cobra.Command{
		Use:   "list [SELECTOR...]",
		Short: "List hosts from the inventory",
		Long: `List hosts from the inventory, with their BMC address, protocols, groups
and labels. Without a selector, every host is listed, in inventory order.

It reads only the inventory: no BMC is contacted, so it answers instantly
and works anywhere, which makes it the way to check what a selector will
hit before running a real command on it.`,
		Example: `  rmm list
  rmm list @db
  rmm list site=ams,!@web
  rmm list 'web[01-04]' -o csv
  rmm list -o json | jq -r '.[].bmc'`,
		Args:              cobra.ArbitraryArgs,
		ValidArgsFunction: completeSelector(env, g),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.selector = args
			return listRun(opts)
		},
	}
	cmd.Flags().StringVarP(&opts.output, "output", "o", FormatTable, "output format: table, json or csv")
	_ = cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions([]string{FormatTable, FormatJSON, FormatCSV}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

// listHost is one host in rmm list -o json: everything the inventory says
// about it except secrets.
type listHost struct {
	Name        string            `json:"name"`
	BMC         string            `json:"bmc"`
	IPMIPort    uint16            `json:"ipmi_port"`
	RedfishPort uint16            `json:"redfish_port"`
	Protocols   []string          `json:"protocols"`
	Credentials string            `json:"credentials"`
	Groups      []string          `json:"groups"`
	Labels      map[string]string `json:"labels"`
	CipherSuite int               `json:"cipher_suite,omitempty"`
	Fingerprint string            `json:"fingerprint,omitempty"`
	Insecure    bool              `json:"insecure,omitempty"`
	Expect      *listExpect       `json:"expect,omitempty"`
	Source      string            `json:"source"`
}

type listExpect struct {
	GUID   string `json:"guid,omitempty"`
	UUID   string `json:"uuid,omitempty"`
	Serial string `json:"serial,omitempty"`
	Power  string `json:"power,omitempty"`
}

var listHeader = []string{"name", "bmc", "protocols", "groups", "labels"}

func listRun(opts *listOptions) error {
	if err := checkFormat(opts.output, FormatTable, FormatJSON, FormatCSV); err != nil {
		return err
	}
	inv, err := loadInventory(opts.env, opts.g)
	if err != nil {
		return err
	}
	sel := orAll(opts.selector)
	hosts, err := selectHosts(inv, sel)
	if err != nil {
		return err
	}
	rows := make([][]string, len(hosts))
	var records []listHost
	if opts.output == FormatJSON {
		records = make([]listHost, len(hosts))
	}
	for i, h := range hosts {
		rows[i] = []string{h.Name, h.Addr.String(), joinComma(h.Protocols), joinComma(h.Groups), formatLabels(h.Labels)}
		if records != nil {
			records[i] = toListHost(h)
		}
	}
	return writeRecords(opts.env.IO.Out, opts.output, listHeader, rows, records)
}

func toListHost(h *inventory.Host) listHost {
	r := listHost{
		Name:        h.Name,
		BMC:         h.Addr.String(),
		IPMIPort:    h.IPMIPort,
		RedfishPort: h.RedfishPort,
		Protocols:   h.Protocols,
		Credentials: h.Credentials,
		Groups:      h.Groups,
		Labels:      h.Labels,
		CipherSuite: h.CipherSuite,
		Fingerprint: h.TLS.Fingerprint,
		Insecure:    h.TLS.Insecure,
		Source:      h.Pos.String(),
	}
	if r.Groups == nil {
		r.Groups = []string{}
	}
	if r.Labels == nil {
		r.Labels = map[string]string{}
	}
	if e := h.Expect; e != (inventory.Expect{}) {
		r.Expect = &listExpect{GUID: e.GUID, UUID: e.UUID, Serial: e.Serial, Power: e.Power}
	}
	return r
}

// formatLabels renders labels sorted by key: "rack=r12,role=db,site=ams".
func formatLabels(l map[string]string) string {
	if len(l) == 0 {
		return ""
	}
	keys := make([]string, 0, len(l))
	for k := range l {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(l[k])
	}
	return b.String()
}
