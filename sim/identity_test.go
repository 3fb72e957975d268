package sim

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rmm-project/rmm/bmc"
	"github.com/rmm-project/rmm/bmc/ipmi"
	"github.com/rmm-project/rmm/bmc/redfish"
	"github.com/rmm-project/rmm/secret"
)

// engine is rmm's own protocol stack, as the CLI wires it (without the
// ipmitool fallback).
var engine = &bmc.Engine{Providers: map[bmc.Protocol]bmc.ProviderFunc{
	bmc.ProtocolIPMI: ipmi.New, bmc.ProtocolRedfish: redfish.New,
}}

// target addresses h over one protocol, expecting id.
func target(h *Host, p bmc.Protocol, id bmc.Identity) bmc.Target {
	t := bmc.Target{
		Name: h.Spec.Name, Addr: h.Spec.Addr, IPMIPort: h.IPMIAddr().Port(), RedfishPort: h.RedfishAddr().Port(),
		Protocols: []bmc.Protocol{p}, Username: h.Spec.Username, Password: secret.New(h.Spec.Password), Expect: id,
	}
	if h.Redfish != nil {
		t.TLS.Fingerprint = h.Redfish.Fingerprint()
	}
	return t
}

// TestIdentityAcrossProtocols: one machine, one identity. rmm's IPMI
// provider (System GUID -> UUID, FRU serial) and its Redfish provider
// (ComputerSystem UUID and SerialNumber) report the same UUID and serial
// for every vendor, so an inventory's expect: {uuid} or {serial} verifies
// over either, power cycle goes ahead, and a replaced machine is refused
// with the field named.
func TestIdentityAcrossProtocols(t *testing.T) {
	var specs []HostSpec
	for _, v := range []string{"dmtf", "dell", "hpe", "lenovo", "supermicro"} {
		s := tmpl
		s.Name, s.Vendor = "id-"+v, v
		specs = append(specs, s)
	}
	r := tmpl
	r.Name, r.Vendor, r.Scenarios = "id-replaced", "dell", []Scenario{Replaced}
	specs = append(specs, r)
	addrs := Addrs(block(t, len(specs)), len(specs))
	for i := range specs {
		specs[i].Addr = addrs[i]
	}
	f := start(t, specs)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	read := func(t *testing.T, h *Host, p bmc.Protocol) bmc.Identity {
		t.Helper()
		c, err := engine.Open(ctx, target(h, p, bmc.Identity{}))
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		defer c.Close(ctx)
		id, err := c.Identity(ctx)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		return id
	}
	for _, h := range f.Hosts() {
		t.Run(h.Spec.Name, func(t *testing.T) {
			m := h.Machine.ID
			overIPMI, overRedfish := read(t, h, bmc.ProtocolIPMI), read(t, h, bmc.ProtocolRedfish)
			if overIPMI.UUID != m.UUID || overRedfish.UUID != m.UUID {
				t.Errorf("UUID: ipmi %q, redfish %q, machine %q", overIPMI.UUID, overRedfish.UUID, m.UUID)
			}
			if overIPMI.GUID != m.GUID {
				t.Errorf("GUID: ipmi %q, machine %q", overIPMI.GUID, m.GUID)
			}
			if overIPMI.Serial != m.Serial || overRedfish.Serial != m.Serial {
				t.Errorf("serial: ipmi %q, redfish %q, machine %q", overIPMI.Serial, overRedfish.Serial, m.Serial)
			}

			want := h.Expected()
			replaced := h.Spec.Has(Replaced)
			for _, p := range []bmc.Protocol{bmc.ProtocolIPMI, bmc.ProtocolRedfish} {
				for _, tc := range []struct {
					field  string
					expect bmc.Identity
					value  string
				}{
					{"uuid", bmc.Identity{UUID: want.UUID}, want.UUID},
					{"serial", bmc.Identity{Serial: want.Serial}, want.Serial},
				} {
					t.Run(string(p)+" expects "+tc.field, func(t *testing.T) {
						// The previous case's cycle must have finished: a
						// cycle of an off machine is only "on".
						for end := time.Now().Add(5 * time.Second); !h.Machine.PowerOn() && time.Now().Before(end); {
							time.Sleep(10 * time.Millisecond)
						}
						before := len(h.Machine.Actions())
						c, err := engine.Open(ctx, target(h, p, tc.expect))
						if err != nil {
							t.Fatal(err)
						}
						defer c.Close(ctx)
						// What rmm power cycle does: verify, then act.
						_, err = c.VerifyIdentity(ctx)
						if replaced {
							if !errors.Is(err, bmc.ErrIdentityMismatch) || !strings.Contains(err.Error(), "identity mismatch: "+tc.field+" is ") ||
								!strings.Contains(err.Error(), "inventory expects "+tc.value) {
								t.Fatalf("replaced machine: %v, want an identity mismatch naming %s", err, tc.field)
							}
							return
						}
						if err != nil {
							t.Fatalf("verify: %v", err)
						}
						if err := c.SetPower(ctx, bmc.ActionCycle); err != nil {
							t.Fatalf("cycle: %v", err)
						}
						// A cycle over Redfish is ForceRestart ("reset") on
						// some trees; either way the machine saw it.
						if acts := h.Machine.Actions(); len(acts) == before || !slices.ContainsFunc(acts[before:], func(a string) bool {
							return a == "cycle" || a == "reset"
						}) {
							t.Errorf("machine actions %v after %d, want a cycle or reset", acts, before)
						}
					})
				}
			}
			if replaced && len(h.Machine.Actions()) != 0 {
				t.Errorf("the replaced machine was powered: %v", h.Machine.Actions())
			}
		})
	}
	wctx, wcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer wcancel()
	if err := f.WaitSessionsClosed(wctx); err != nil {
		t.Error(err)
	}
}
