package cli

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/rmm-project/rmm/inventory"
	"github.com/rmm-project/rmm/sim"
	"github.com/rmm-project/rmm/sim/machine"
)

func init() { register(newSimCmd) }

// simOptions holds rmm sim's flags.
type simOptions struct {
	env       *Env
	g         *globalOptions
	selector  []string
	scenarios []string
	duration  time.Duration
	readyFile string
}

func newSimCmd(env *Env, g *globalOptions) *cobra.Command {
	o := &simOptions{env: env, g: g}
	cmd := &cobra.Command{
		Use:   "sim [SELECTOR...]",
		Short: "Run a simulated BMC fleet from the inventory, on loopback",
		Long: `Start one simulated BMC per selected host (default all) on that host's own
BMC address and ports, and serve until interrupted. IPMI hosts get an
RMCP+ BMC (cipher suites 3 and 17) with real power semantics, a System Event
Log, sensors and Serial-over-LAN; Redfish hosts get an HTTPS server serving
a real vendor's Redfish tree (the host's sim.vendor: dell, hpe, lenovo,
supermicro, dmtf) with sessions and a Reset that changes power. A host with
both protocols has one machine behind both.

The BMC accepts the host's inventory credentials. Scenarios come from each
host's sim.scenario, or --scenario HOST=NAME: dead, slow, wrong-credentials,
panicked, sol-busy, overheat, replaced.

Addresses must be loopback (127.0.0.0/8 is all loopback on Linux, so every
host gets a distinct endpoint); ports below 1024 need root.`,
		Example: `  rmm sim                       # the whole inventory, until Ctrl-C
  rmm sim @ams --scenario db1=panicked
  rmm sim --for 60s --ready-file /tmp/sim.ready`,
		RunE: func(cmd *cobra.Command, args []string) error {
			o.selector = args
			return simRun(cmd.Context(), o)
		},
		ValidArgsFunction: completeSelector(env, g),
	}
	cmd.Flags().StringArrayVar(&o.scenarios, "scenario", nil, "add a scenario to a host: HOST=SCENARIO (repeatable)")
	cmd.Flags().DurationVar(&o.duration, "for", 0, "stop by itself after this long (default: until interrupted)")
	cmd.Flags().StringVar(&o.readyFile, "ready-file", "", "write this file once every BMC is serving (for scripts)")
	return cmd
}

func simRun(ctx context.Context, o *simOptions) error {
	inv, err := loadInventory(o.env, o.g)
	if err != nil {
		return err
	}
	sel := orAll(o.selector)
	hosts, err := selectHosts(inv, sel)
	if err != nil {
		return err
	}
	extra := map[string][]string{}
	for _, s := range o.scenarios {
		name, sc, ok := strings.Cut(s, "=")
		if !ok {
			return usageErrorf("--scenario wants HOST=SCENARIO, got %q", s)
		}
		if _, found := inv.Host(name); !found {
			return usageErrorf("--scenario %s: no host %q in the inventory", s, name)
		}
		if !slices.Contains(sim.Scenarios, sim.Scenario(sc)) {
			return usageErrorf("--scenario %s: unknown scenario %q", s, sc)
		}
		extra[name] = append(extra[name], sc)
	}
	specs, err := simSpecs(ctx, inv, hosts, extra)
	if err != nil {
		return err
	}
	start := time.Now()
	// Kept certificates: the next run presents the same ones, which rmm's
	// known_bmcs (trust on first use) accepts.
	fl, err := sim.Start(ctx, specs, sim.WithCertDir(sim.DefaultCertDir(o.env.getenv)))
	if err != nil {
		return fmt.Errorf("sim: %w", err)
	}
	defer fl.Close()

	var rows [][]string
	for _, h := range fl.Hosts() {
		ipmiEP, rfEP, fp := "", "", ""
		if ap := h.IPMIAddr(); ap.IsValid() {
			ipmiEP = ap.String()
		}
		if ap := h.RedfishAddr(); ap.IsValid() {
			rfEP = "https://" + ap.String()
			fp = h.Redfish.Fingerprint()[:16] + "…"
		}
		var sc []string
		for _, s := range h.Spec.Scenarios {
			sc = append(sc, string(s))
		}
		power := "on"
		if !h.Machine.PowerOn() {
			power = "off"
		}
		rows = append(rows, []string{h.Spec.Name, ipmiEP, rfEP, h.Spec.Vendor, power, strings.Join(sc, ","), fp})
	}
	if err := writeTable(o.env.IO.Out, []string{"host", "ipmi", "redfish", "vendor", "power", "scenarios", "tls sha256"}, rows); err != nil {
		return err
	}
	fmt.Fprintf(o.env.IO.ErrOut, "sim: serving %d simulated BMCs (started in %s); reach them with rmm using the same inventory, or e.g. ipmitool -I lanplus -C 3 -H IP -p PORT -U USER -E; Ctrl-C stops\n",
		len(rows), time.Since(start).Round(time.Millisecond))
	if o.readyFile != "" {
		if err := os.WriteFile(o.readyFile, []byte(fmt.Sprintf("%d\n", os.Getpid())), 0o644); err != nil {
			return err
		}
		defer os.Remove(o.readyFile)
	}
	wait := ctx
	if o.duration > 0 {
		var cancel context.CancelFunc
		wait, cancel = context.WithTimeout(ctx, o.duration)
		defer cancel()
	}
	<-wait.Done()
	fmt.Fprintf(o.env.IO.ErrOut, "sim: stopping\n")
	return nil
}

// simSpecs turns inventory hosts into simulator specs: same addresses and
// ports, the host's credentials as the BMC account, the identity the
// inventory expects (so identity checks pass unless the host is
// "replaced"), and the host's scenarios plus extra ones.
func simSpecs(ctx context.Context, inv *inventory.Inventory, hosts []*inventory.Host, extra map[string][]string) ([]sim.HostSpec, error) {
	var specs []sim.HostSpec
	for _, h := range hosts {
		if !h.Addr.IsLoopback() {
			return nil, usageErrorf("sim: %s has BMC address %s, which is not loopback; rmm sim only serves on 127.0.0.0/8 and ::1", h.Name, h.Addr)
		}
		cs := inv.CredentialsFor(h)
		if cs == nil {
			return nil, fmt.Errorf("sim: %s has no credentials set", h.Name)
		}
		user, pass, err := cs.Resolve(ctx)
		if err != nil {
			return nil, fmt.Errorf("sim: %s: %w", h.Name, err)
		}
		id := machine.DerivedIdentity(h.Name)
		if h.Expect.GUID != "" {
			id.GUID = h.Expect.GUID
		}
		if h.Expect.UUID != "" {
			id.UUID = h.Expect.UUID
		}
		// One machine, one identity: IPMI's System GUID is the SMBIOS UUID
		// Redfish reports, so an inventory that records one of them gets
		// both.
		if h.Expect.UUID != "" && h.Expect.GUID == "" {
			id.GUID = h.Expect.UUID
		}
		if h.Expect.GUID != "" && h.Expect.UUID == "" {
			id.UUID = h.Expect.GUID
		}
		if h.Expect.Serial != "" {
			id.Serial = h.Expect.Serial
		}
		s := sim.HostSpec{
			Name: h.Name, Addr: h.Addr, Vendor: h.Sim.Vendor,
			Username: user, Password: pass.Reveal(), Identity: id,
			Delay: h.Sim.Delay, PowerOff: h.Expect.Power == "off",
		}
		for _, p := range h.Protocols {
			switch p {
			case inventory.ProtocolIPMI, inventory.ProtocolIPMItool:
				s.IPMI, s.IPMIPort = true, h.IPMIPort
			case inventory.ProtocolRedfish:
				s.Redfish, s.RedfishPort = true, h.RedfishPort
			}
		}
		for _, sc := range append(slices.Clone(h.Sim.Scenarios), extra[h.Name]...) {
			if !slices.Contains(s.Scenarios, sim.Scenario(sc)) {
				s.Scenarios = append(s.Scenarios, sim.Scenario(sc))
			}
		}
		specs = append(specs, s)
	}
	return specs, nil
}
