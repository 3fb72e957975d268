package redfish

import (
	"errors"
	"testing"
	"time"

	"github.com/rmm-project/rmm/bmc"
)

// TestThroughEngine drives the provider the way rmm does: registered in
// bmclib's registry by bmc.Engine, power through bmclib's client, the
// optional capabilities by type assertion.
func TestThroughEngine(t *testing.T) {
	t.Parallel()
	for _, v := range vendors {
		t.Run(v.name, func(t *testing.T) {
			t.Parallel()
			s := newSim(t, v.name)
			s.m.Panic()
			e := &bmc.Engine{Providers: map[bmc.Protocol]bmc.ProviderFunc{bmc.ProtocolRedfish: New}}
			ctx := testCtx(t, 20*time.Second)
			s.target.Expect = bmc.Identity{UUID: s.m.ID.UUID, Serial: s.m.ID.Serial}
			conn, err := e.Open(ctx, s.target)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close(ctx)
			if conn.ProviderName() != Name || conn.Protocol() != bmc.ProtocolRedfish {
				t.Fatalf("answered by %s over %s", conn.ProviderName(), conn.Protocol())
			}
			if _, err := conn.VerifyIdentity(ctx); err != nil {
				t.Fatal(err)
			}
			if err := conn.SetPower(ctx, bmc.ActionCycle); err != nil {
				t.Fatal(err)
			}
			waitPower(t, s.m, true)
			if st, err := conn.PowerState(ctx); err != nil || st != bmc.PowerOn {
				t.Fatalf("power state %s, %v", st, err)
			}
			es, err := conn.SEL(ctx)
			if err != nil || len(es) == 0 || es[0].Source != v.sel {
				t.Fatalf("SEL: %d entries, %v", len(es), err)
			}
			if _, err := conn.Health(ctx); err != nil {
				t.Fatal(err)
			}
			if ci, err := conn.ConsoleInfo(ctx); err != nil || len(ci.Transports) == 0 {
				t.Fatalf("console info %+v, %v", ci, err)
			}
			if err := conn.Close(ctx); err != nil {
				t.Fatal(err)
			}
			if n := s.srv.OpenSessions(); n != 0 {
				t.Fatalf("%d sessions after close", n)
			}

			// A wrong identity stops the engine's caller before anything
			// destructive.
			s.target.Expect = bmc.Identity{Serial: "SOMEONE-ELSE"}
			conn, err = e.Open(ctx, s.target)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := conn.VerifyIdentity(ctx); !errors.Is(err, bmc.ErrIdentityMismatch) {
				t.Fatalf("identity check: %v", err)
			}
			conn.Close(ctx)
		})
	}
}
