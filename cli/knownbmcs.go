package cli

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/rmm-project/rmm/bmc"
	"github.com/rmm-project/rmm/inventory"
	"github.com/rmm-project/rmm/knownbmcs"
)

func init() { register(newKnownBMCsCmd) }

// knownOptions holds rmm known-bmcs' flags.
type knownOptions struct {
	env    *Env
	g      *globalOptions
	yes    bool
	output string
}

func newKnownBMCsCmd(env *Env, g *globalOptions) *cobra.Command {
	o := &knownOptions{env: env, g: g}
	cmd := &cobra.Command{
		Use:   "known-bmcs [list | check SELECTOR | forget SELECTOR]",
		Short: "Review the Redfish certificates rmm trusts on first use",
		Long: `Redfish BMCs almost always present self-signed certificates, so rmm pins
them: by the fingerprint in the inventory (redfish.fingerprint), or, when
there is none, by the one it saw on first use, recorded in a known-BMCs
file like ssh's known_hosts ($RMM_KNOWN_BMCS, else
$XDG_STATE_HOME/rmm/known_bmcs). A certificate that changes later is
refused until you review it.

  list            show every recorded fingerprint (the default)
  check SELECTOR  connect and compare each host's current certificate with
                  the pin or the record, without logging in
  forget SELECTOR remove the records, so the next connection records the
                  new certificate (compare it with the BMC's own console
                  first: check shows it)`,
		Example: `  rmm known-bmcs
  rmm known-bmcs check @web
  rmm known-bmcs forget web03`,
		ValidArgsFunction: func(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
			if len(args) == 0 {
				return []string{"list", "check", "forget"}, cobra.ShellCompDirectiveNoFileComp
			}
			return completeSelector(env, g)(cmd, args[1:], toComplete)
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			sub := "list"
			if len(args) > 0 {
				sub, args = args[0], args[1:]
			}
			return knownRun(cmd.Context(), o, sub, args)
		},
	}
	cmd.Flags().BoolVarP(&o.yes, "yes", "y", false, "forget without asking")
	cmd.Flags().StringVarP(&o.output, "output", "o", FormatTable, "output format: table, json")
	return cmd
}

func knownRun(ctx context.Context, o *knownOptions, sub string, args []string) error {
	if err := checkFormat(o.output, FormatTable, FormatJSON); err != nil {
		return err
	}
	store := knownbmcs.New(knownbmcs.DefaultPath(o.env.getenv))
	switch sub {
	case "list":
		if len(args) != 0 {
			return usageErrorf("known-bmcs list takes no arguments")
		}
		es, err := store.List()
		if err != nil {
			return err
		}
		var rows [][]string
		for _, e := range es {
			rows = append(rows, []string{e.Name, e.Addr.String(), e.Fingerprint, e.FirstSeen.Local().Format("2006-01-02 15:04")})
		}
		if es == nil {
			es = []knownbmcs.Entry{}
		}
		return writeRecords(o.env.IO.Out, o.output, []string{"host", "bmc", "sha256", "first seen"}, rows, es)
	case "check", "forget":
	default:
		return usageErrorf("unknown known-bmcs action %q: use list, check or forget", sub)
	}
	if len(args) == 0 {
		return usageErrorf("known-bmcs %s needs a host selector", sub)
	}
	inv, err := loadInventory(o.env, o.g)
	if err != nil {
		return err
	}
	hosts, err := selectHosts(inv, args)
	if err != nil {
		return err
	}
	var rf []*inventory.Host
	for _, h := range hosts {
		for _, p := range h.Protocols {
			if p == inventory.ProtocolRedfish {
				rf = append(rf, h)
				break
			}
		}
	}
	if len(rf) == 0 {
		return usageErrorf("none of the selected hosts uses Redfish")
	}
	endpoint := func(h *inventory.Host) netip.AddrPort { return netip.AddrPortFrom(h.Addr, h.RedfishPort) }
	if sub == "forget" {
		if err := confirm(o.env, o.yes, "forget the recorded certificate of", rf); err != nil {
			return err
		}
		var aps []netip.AddrPort
		for _, h := range rf {
			aps = append(aps, endpoint(h))
		}
		n, err := store.Forget(aps...)
		if err != nil {
			return err
		}
		fmt.Fprintf(o.env.IO.ErrOut, "forgot %d of %d; the next connection records the certificate it sees\n", n, len(rf))
		return nil
	}
	type row struct {
		Host, BMC, Current, Expected, Source, Status string
	}
	rs := runFleet(ctx, o.env, rf, fleetOptions{jobs: 32, timeout: 10 * time.Second}.reading(), "known-bmcs check", func(ctx context.Context, h *inventory.Host) (row, error) {
		ap := endpoint(h)
		r := row{Host: h.Name, BMC: ap.String()}
		fp, err := bmc.CertFingerprint(ctx, ap)
		if err != nil {
			r.Status = string(bmc.Classify(err))
			return r, fmt.Errorf("%s (bmc %s): %w", h.Name, ap, err)
		}
		r.Current = fp
		switch {
		case h.TLS.Fingerprint != "":
			r.Expected, r.Source = h.TLS.Fingerprint, "inventory pin"
		default:
			if got, ok := store.Lookup(h.Name, ap); ok {
				r.Expected, r.Source = got, "known-bmcs"
			}
		}
		switch {
		case r.Expected == "":
			r.Status = "unknown (recorded on first use)"
		case strings.EqualFold(r.Expected, fp):
			r.Status = "ok"
		default:
			r.Status = "CHANGED"
			return r, fmt.Errorf("%s (bmc %s): certificate changed: now %s, %s has %s", h.Name, ap, fp, r.Source, r.Expected)
		}
		return r, nil
	})
	var rows [][]string
	var out []row
	failed := 0
	for _, r := range rs {
		out = append(out, r.Value)
		rows = append(rows, []string{r.Value.Host, r.Value.BMC, r.Value.Status, r.Value.Current, r.Value.Source})
		if r.Err != nil {
			failed++
		}
	}
	if err := writeRecords(o.env.IO.Out, o.output, []string{"host", "bmc", "status", "sha256 now", "pinned by"}, rows, out); err != nil {
		return err
	}
	reportErrors(o.env, rs)
	return silentExit(summarize(o.env, len(rs), failed, "known-bmcs check"))
}
