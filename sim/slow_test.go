package sim

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/rmm-project/rmm/bmc"
)

// TestSlowIPMILeavesNoSession is the regression test of a leak seen with
// `rmm power status` against the slow scenario at 300 ms, a delay just
// above the client's first command retransmission (250 ms): open, power
// status, close, twenty times (four hosts, five runs each, at once, as a
// fleet run does), half of them with a deadline that ends inside the
// handshake. After every run the BMC must hold no session, established or
// half-open, within a few seconds.
func TestSlowIPMILeavesNoSession(t *testing.T) {
	if testing.Short() {
		t.Skip("20 handshakes at 300 ms a packet")
	}
	specs := Generate(block(t, 4), 4, HostSpec{IPMI: true, Username: "admin", Password: "fleet-pass",
		Scenarios: []Scenario{Slow}, Delay: 300 * time.Millisecond})
	f := start(t, specs)
	var wg sync.WaitGroup
	errs := make(chan error, len(specs))
	for _, h := range f.Hosts() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 5 {
				// Even runs have time for everything (about 1.8 s);
				// odd ones run out at 0.9-1.3 s, inside the handshake
				// (Open Session, RAKP 1, RAKP 3 at 300 ms each).
				deadline := 5 * time.Second
				if i%2 == 1 {
					deadline = time.Duration(900+200*(i/2)) * time.Millisecond
				}
				ctx, cancel := context.WithTimeout(context.Background(), deadline)
				c, err := engine.Open(ctx, target(h, bmc.ProtocolIPMI, bmc.Identity{}))
				if err == nil {
					_, err = c.PowerState(ctx)
					_ = c.Close(ctx)
				}
				cancel()
				if err != nil && i%2 == 0 {
					errs <- fmt.Errorf("%s run %d: %w", h.Spec.Name, i, err)
					return
				}
				var st struct{ open, half int }
				for end := time.Now().Add(3 * time.Second); ; time.Sleep(20 * time.Millisecond) {
					s := h.IPMI.Stats()
					st.open, st.half = s.SessionsOpen, s.SessionsHalfOpen
					if st.open+st.half == 0 || time.Now().After(end) {
						break
					}
				}
				if st.open+st.half != 0 {
					errs <- fmt.Errorf("%s run %d (deadline %s, error %v): %d open and %d half-open sessions 3 s later",
						h.Spec.Name, i, deadline, err, st.open, st.half)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestHostSetDead: a host killed at run time answers neither protocol,
// and answers both again once revived.
func TestHostSetDead(t *testing.T) {
	s := tmpl
	s.Name, s.Addr = "lazarus", block(t, 1)
	h := start(t, []HostSpec{s}).Host("lazarus")
	try := func(p bmc.Protocol) error {
		ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
		defer cancel()
		c, err := engine.Open(ctx, target(h, p, bmc.Identity{}))
		if err != nil {
			return err
		}
		defer c.Close(ctx)
		_, err = c.PowerState(ctx)
		return err
	}
	for _, step := range []struct {
		dead bool
		want error
	}{{false, nil}, {true, bmc.ErrTimeout}, {false, nil}} {
		h.SetDead(step.dead)
		for _, p := range []bmc.Protocol{bmc.ProtocolIPMI, bmc.ProtocolRedfish} {
			if err := try(p); (step.want == nil) != (err == nil) || (step.want != nil && !errors.Is(err, step.want)) {
				t.Errorf("dead=%v over %s: %v, want %v", step.dead, p, err, step.want)
			}
		}
	}
}
