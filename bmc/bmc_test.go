package bmc_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/rmm-project/rmm/bmc"
	"github.com/rmm-project/rmm/bmc/ipmi"
	"github.com/rmm-project/rmm/bmc/redfish"
	"github.com/rmm-project/rmm/secret"
	"github.com/rmm-project/rmm/sim"
)

// The bmc package's tests use loopback block 127.0.80.0/24.
const testPassword = "engine-test-pa55"

func TestDialIPRefusesNames(t *testing.T) {
	tests := []string{"bmc.example.com:623", "localhost:443", "db1-ipmi:623", "127.0.0.1", "[bmc.example.com]:623", ":623"}
	for _, addr := range tests {
		t.Run(addr, func(t *testing.T) {
			c, err := bmc.DialIP(context.Background(), "tcp", addr)
			if err == nil {
				c.Close()
				t.Fatalf("dialled %q", addr)
			}
			if !errors.Is(err, bmc.ErrHostname) {
				t.Fatalf("err = %v, want ErrHostname", err)
			}
		})
	}
	// An IP literal is dialled; nothing listening is "unreachable".
	_, err := bmc.DialIP(context.Background(), "tcp", "127.0.80.250:9")
	if !errors.Is(err, bmc.ErrUnreachable) {
		t.Fatalf("refused port: %v, want ErrUnreachable", err)
	}
}

func TestIdentityMismatch(t *testing.T) {
	got := bmc.Identity{GUID: "4c4c4544-0035-4c10-8052-b3c04f4d5032", UUID: "4c4c4544-0035-4c10-8052-b3c04f4d5032", Serial: "CN7475"}
	tests := []struct {
		name   string
		expect bmc.Identity
		got    bmc.Identity
		want   string // "" = match
	}{
		{"nothing expected", bmc.Identity{}, got, ""},
		{"uuid matches, case-insensitive", bmc.Identity{UUID: "4C4C4544-0035-4C10-8052-B3C04F4D5032"}, got, ""},
		{"serial matches", bmc.Identity{Serial: " CN7475 "}, got, ""},
		{"serial differs", bmc.Identity{Serial: "CN0001"}, got, "serial is CN7475, inventory expects CN0001"},
		{"uuid differs", bmc.Identity{UUID: "00000000-0000-4000-8000-000000000000"}, got, "uuid is 4c4c4544"},
		{"nothing comparable", bmc.Identity{Serial: "X"}, bmc.Identity{GUID: "g"}, "reports none of the identity fields"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.expect.Mismatch(tt.got)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("unexpected %v", err)
				}
				return
			}
			if !errors.Is(err, bmc.ErrIdentityMismatch) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want ErrIdentityMismatch containing %q", err, tt.want)
			}
		})
	}
}

func TestClassifyAndHostError(t *testing.T) {
	tests := []struct {
		err  error
		want bmc.Outcome
	}{
		{nil, bmc.OutcomeOK},
		{fmt.Errorf("x: %w", bmc.ErrAuth), bmc.OutcomeAuthFailed},
		{fmt.Errorf("x: %w", bmc.ErrTLSPin), bmc.OutcomeAuthFailed},
		{fmt.Errorf("x: %w", context.DeadlineExceeded), bmc.OutcomeTimeout},
		{fmt.Errorf("x: %w", context.Canceled), bmc.OutcomeCancelled},
		{fmt.Errorf("x: %w", bmc.ErrUnreachable), bmc.OutcomeUnreachable},
		{fmt.Errorf("x: %w", bmc.ErrBusy), bmc.OutcomeBusy},
		{bmc.NotSent(fmt.Errorf("x: %w", bmc.ErrUnsupported)), bmc.OutcomeUnsupported},
		{fmt.Errorf("x: %w", bmc.ErrIdentityMismatch), bmc.OutcomeIdentityMismatch},
		{errors.New("odd"), bmc.OutcomeFailed},
	}
	for _, tt := range tests {
		if got := bmc.Classify(tt.err); got != tt.want {
			t.Errorf("Classify(%v) = %s, want %s", tt.err, got, tt.want)
		}
	}
	tg := bmc.Target{Name: "db1", Addr: netip.MustParseAddr("10.0.5.11")}
	err := tg.Wrap("power status", fmt.Errorf("no answer: %w", bmc.ErrTimeout))
	if err.Error() != "db1 (bmc 10.0.5.11): power status: no answer: timed out" {
		t.Errorf("HostError text %q", err)
	}
	if tg.Wrap("again", err) != err {
		t.Error("a HostError was wrapped twice")
	}
	if bmc.Hint(err) == "" {
		t.Error("a timeout has no hint")
	}
	if ns := bmc.NotSent(errors.New("e")); !errors.Is(ns, bmc.ErrNotSent) || ns.Error() != "e" {
		t.Errorf("NotSent: %v", ns)
	}
}

func TestParsePowerState(t *testing.T) {
	tests := map[string]bmc.PowerState{"on": bmc.PowerOn, "Off": bmc.PowerOff, "Chassis Power is on": bmc.PowerOn,
		"PoweringOff": bmc.PowerPoweringOf, "PoweringOn": bmc.PowerPoweringOn, "Paused": bmc.PowerUnknown}
	for in, want := range tests {
		if got := bmc.ParsePowerState(in); got != want {
			t.Errorf("ParsePowerState(%q) = %s, want %s", in, got, want)
		}
	}
}

// engineFleet starts simulated BMCs for the engine tests.
func engineFleet(t *testing.T, specs ...sim.HostSpec) *sim.Fleet {
	t.Helper()
	addrs := sim.Addrs(netip.MustParseAddr("127.0.80.10"), 20)
	for i := range specs {
		specs[i].Addr = addrs[i]
		specs[i].Username, specs[i].Password = "admin", testPassword
		if specs[i].Vendor == "" {
			specs[i].Vendor = "dell"
		}
	}
	fl, err := sim.Start(context.Background(), specs)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := fl.WaitSessionsClosed(ctx); err != nil {
			t.Errorf("sessions left open: %v", err)
		}
		fl.Close()
	})
	return fl
}

func targetFor(h *sim.Host, protos ...bmc.Protocol) bmc.Target {
	return bmc.Target{
		Name: h.Spec.Name, Addr: h.Spec.Addr, IPMIPort: sim.DefaultIPMIPort(), RedfishPort: sim.DefaultRedfishPort(),
		Protocols: protos, Username: "admin", Password: secret.New(testPassword),
		TLS: bmc.TLSConfig{Insecure: true},
	}
}

var engine = &bmc.Engine{Providers: map[bmc.Protocol]bmc.ProviderFunc{bmc.ProtocolIPMI: ipmi.New, bmc.ProtocolRedfish: redfish.New}}

// The engine tries protocols in the host's order, falls back when one does
// not answer, and says which answered.
func TestEngineProtocolOrderAndFallback(t *testing.T) {
	fl := engineFleet(t,
		sim.HostSpec{Name: "both", IPMI: true, Redfish: true},
		sim.HostSpec{Name: "rfonly", Redfish: true},
	)
	tests := []struct {
		host   string
		protos []bmc.Protocol
		want   bmc.Protocol
	}{
		{"both", []bmc.Protocol{bmc.ProtocolIPMI, bmc.ProtocolRedfish}, bmc.ProtocolIPMI},
		{"both", []bmc.Protocol{bmc.ProtocolRedfish, bmc.ProtocolIPMI}, bmc.ProtocolRedfish},
		{"rfonly", []bmc.Protocol{bmc.ProtocolIPMI, bmc.ProtocolRedfish}, bmc.ProtocolRedfish}, // IPMI refused: fall back
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s/%v", tt.host, tt.protos), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			c, err := engine.Open(ctx, targetFor(fl.Host(tt.host), tt.protos...))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close(ctx)
			if c.Protocol() != tt.want {
				t.Fatalf("answered over %s, want %s", c.Protocol(), tt.want)
			}
			if st, err := c.PowerState(ctx); err != nil || st != bmc.PowerOn {
				t.Fatalf("power %s, %v", st, err)
			}
		})
	}
}

// A refused login ends the attempts: the same credentials would be refused
// again, and repeated failures can lock the BMC account.
func TestEngineNoFallbackAfterAuthFailure(t *testing.T) {
	fl := engineFleet(t, sim.HostSpec{Name: "badpw", IPMI: true, Redfish: true, Scenarios: []sim.Scenario{sim.WrongCredentials}})
	h := fl.Host("badpw")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	before := len(h.Redfish.Requests())
	_, err := engine.Open(ctx, targetFor(h, bmc.ProtocolIPMI, bmc.ProtocolRedfish))
	if !errors.Is(err, bmc.ErrAuth) {
		t.Fatalf("err = %v, want ErrAuth", err)
	}
	if !strings.HasPrefix(err.Error(), "badpw (bmc "+h.Spec.Addr.String()+"): open:") {
		t.Errorf("error does not name host and BMC: %v", err)
	}
	if n := len(h.Redfish.Requests()) - before; n != 0 {
		t.Errorf("Redfish was tried after IPMI refused the password (%d requests)", n)
	}
}

// A dead host costs one deadline in total, shared between its protocols,
// not one per protocol.
func TestEngineDeadHostCostsOneDeadline(t *testing.T) {
	fl := engineFleet(t, sim.HostSpec{Name: "dead", IPMI: true, Redfish: true, Scenarios: []sim.Scenario{sim.Dead}})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	start := time.Now()
	_, err := engine.Open(ctx, targetFor(fl.Host("dead"), bmc.ProtocolIPMI, bmc.ProtocolRedfish))
	el := time.Since(start)
	if bmc.Classify(err) != bmc.OutcomeTimeout {
		t.Fatalf("err = %v, want a timeout", err)
	}
	if !strings.Contains(err.Error(), "ipmi:") || !strings.Contains(err.Error(), "redfish:") {
		t.Errorf("error does not report both protocols: %v", err)
	}
	if el > 4*time.Second {
		t.Errorf("took %v with a 2 s deadline", el)
	}
}

// Nothing in the engine resolves names: a Target with no address is
// refused before anything is sent.
func TestEngineRefusesMissingAddress(t *testing.T) {
	_, err := engine.Open(context.Background(), bmc.Target{Name: "x"})
	if !errors.Is(err, bmc.ErrHostname) {
		t.Fatalf("err = %v", err)
	}
	var ne net.Error
	if errors.As(err, &ne) {
		t.Fatalf("a network error for a target that must not be dialled: %v", err)
	}
}
