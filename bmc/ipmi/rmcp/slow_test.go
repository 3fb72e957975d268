package rmcp

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/bougou/go-ipmi/pkg/types"

	"github.com/rmm-project/rmm/bmc"
	"github.com/rmm-project/rmm/bmc/ipmi/internal/testbmc"
)

// setupPackets counts the session-setup requests a BMC received, by
// payload type (Open Session Request, RAKP 1, RAKP 3).
func setupPackets(b *testbmc.BMC) map[types.PayloadType]int {
	n := map[types.PayloadType]int{}
	for _, pkt := range b.Inbound() {
		p, err := parsePacket(pkt, 0)
		if err != nil || p.sessionID != 0 {
			continue
		}
		switch p.payloadType {
		case types.PayloadTypeRmcpOpenSessionRequest, types.PayloadTypeRAKPMessage1, types.PayloadTypeRAKPMessage3:
			n[p.payloadType]++
		}
	}
	return n
}

// Outbound packets of a test BMC, in order, for a client that opens a
// session and nothing is retransmitted.
const (
	outChannelAuth = 1
	outOpenSession = 2
	outRAKP2       = 3
	outRAKP4       = 4
)

// TestSlowBMCLeavesNoSession opens sessions to BMCs that answer late, lose
// answers, or answer a retransmitted copy first, and checks that the BMC's
// session table is empty within a couple of seconds: no established
// session left behind by a handshake that failed after RAKP 3, no
// half-open one from a retransmitted Open Session Request or an abandoned
// RAKP 1.
func TestSlowBMCLeavesNoSession(t *testing.T) {
	slow := func(d time.Duration) func(int) time.Duration { return func(int) time.Duration { return d } }
	for _, tc := range []struct {
		name     string
		opts     testbmc.Options
		deadline time.Duration
		wantErr  error // from Open
		// after the open, before the status read and the close
		pause time.Duration
		// setup requests the BMC may see per open (0: not checked)
		maxOpenSession, maxRAKP1, maxRAKP3 int
		abandoned                          int
	}{
		{name: "300 ms BMC: no retransmitted handshake", opts: testbmc.Options{DelayOut: slow(300 * time.Millisecond)},
			deadline: 5 * time.Second, maxOpenSession: 1, maxRAKP1: 1, maxRAKP3: 1},
		{name: "late Open Session answer: the stray session is freed",
			opts: testbmc.Options{DelayOut: func(n int) time.Duration {
				if n == outOpenSession {
					return 1500 * time.Millisecond
				}
				return 0
			}},
			deadline: 5 * time.Second, pause: time.Second, maxOpenSession: 2, abandoned: 1},
		{name: "RAKP 2 lost: the half-open session is freed", opts: testbmc.Options{DropOut: func(n int) bool { return n >= outRAKP2 }},
			deadline: 2500 * time.Millisecond, wantErr: bmc.ErrTimeout},
		{name: "RAKP 4 lost: the activated session is closed", opts: testbmc.Options{DropOut: func(n int) bool { return n >= outRAKP4 }},
			deadline: 2500 * time.Millisecond, wantErr: bmc.ErrTimeout},
		{name: "RAKP 4 to the first copy late, to the second later: the first counts",
			opts: testbmc.Options{DelayOut: func(n int) time.Duration {
				switch n {
				case outRAKP4:
					return 1300 * time.Millisecond
				case outRAKP4 + 1:
					return 5 * time.Second
				}
				return 0
			}},
			deadline: 2500 * time.Millisecond, maxRAKP3: 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := startBMC(t, tc.opts)
			ctx, cancel := context.WithTimeout(context.Background(), tc.deadline)
			defer cancel()
			s, err := Open(ctx, config(b, 17))
			if !errors.Is(err, tc.wantErr) || (err == nil) != (tc.wantErr == nil) {
				t.Fatalf("open: %v, want %v", err, tc.wantErr)
			}
			if err == nil {
				time.Sleep(tc.pause)
				if _, err := s.Raw(ctx, 0x00, 0x01, nil); err != nil {
					t.Errorf("get chassis status: %v", err)
				}
				st := s.Stats()
				if err := s.Close(ctx); err != nil {
					t.Errorf("close: %v", err)
				}
				if st.Abandoned != tc.abandoned {
					t.Errorf("abandoned %d stray sessions, want %d (stats %+v)", st.Abandoned, tc.abandoned, st)
				}
			}
			if n := b.WaitSessions(0, 3*time.Second); n != 0 {
				t.Errorf("the BMC holds %d session(s) 3 s after the client finished", n)
			}
			got := setupPackets(b)
			for pt, limit := range map[types.PayloadType]int{types.PayloadTypeRmcpOpenSessionRequest: tc.maxOpenSession,
				types.PayloadTypeRAKPMessage1: tc.maxRAKP1, types.PayloadTypeRAKPMessage3: tc.maxRAKP3} {
				if limit > 0 && got[pt] > limit {
					t.Errorf("the BMC received %d copies of %s, want at most %d", got[pt], pt, limit)
				}
			}
		})
	}
}

// TestSlowBMCLoop is the regression test of the leak seen with `rmm power
// status` against a simulated BMC answering in 300 ms: open, read, close,
// twenty times (four BMCs, five runs each, at once), with the session
// table checked empty after each run.
func TestSlowBMCLoop(t *testing.T) {
	if testing.Short() {
		t.Skip("20 sessions at 6 round trips of 300 ms")
	}
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		b := startBMC(t, testbmc.Options{DelayOut: func(int) time.Duration { return 300 * time.Millisecond }})
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 5 {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				s, err := Open(ctx, config(b, 17))
				if err == nil {
					_, err = s.Raw(ctx, 0x00, 0x01, nil)
					_ = s.Close(ctx)
				}
				cancel()
				if err != nil {
					errs <- fmt.Errorf("%s run %d: %w", b.Addr, i, err)
					return
				}
				if n := b.WaitSessions(0, 2*time.Second); n != 0 {
					errs <- fmt.Errorf("%s: after run %d the BMC holds %d session(s)", b.Addr, i, n)
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
