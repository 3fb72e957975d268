package rmcp

import (
	"context"
	"encoding/binary"
	"testing"
	"time"

	"github.com/rmm-project/rmm/bmc/ipmi/internal/testbmc"
)

// inSession returns the RMCP+ in-session packets among captured ones:
// session ID, sequence number, and for encrypted payloads the IV.
type wirePkt struct {
	sessionID, seq uint32
	iv             [16]byte
	encrypted      bool
}

func inSession(pkts [][]byte) []wirePkt {
	var out []wirePkt
	for _, b := range pkts {
		p, err := parsePacket(b, 12) // macLen only matters for the trailer split
		if err != nil {
			p, err = parsePacket(b, 16)
		}
		if err != nil || p.class != classIPMI || p.authType != authTypeRMCPP || p.sessionID == 0 {
			continue
		}
		w := wirePkt{sessionID: p.sessionID, seq: p.seq, encrypted: p.encrypted}
		if p.encrypted && len(p.payload) >= 16 {
			copy(w.iv[:], p.payload[:16])
		}
		out = append(out, w)
	}
	return out
}

// TestWireIVsAndSequence captures everything two sessions sent (requests
// and SOL packets included) and checks that no two encrypted packets share
// an IV and that each session's sequence numbers start at 1 and only grow.
func TestWireIVsAndSequence(t *testing.T) {
	b := startBMC(t, testbmc.Options{Console: true})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, suite := range []int{3, 17} {
		s, err := Open(ctx, config(b, suite))
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 300; i++ {
			if _, err := s.Raw(ctx, 0x00, 0x01, nil); err != nil {
				t.Fatal(err)
			}
		}
		sol, err := s.OpenSOL(ctx, SOLOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 20; i++ {
			if _, err := sol.Write([]byte("password\r")); err != nil {
				t.Fatal(err)
			}
		}
		_ = sol.Close(ctx)
		_ = s.Close(ctx)
	}
	pkts := inSession(b.Inbound())
	if len(pkts) < 2*(300+20) {
		t.Fatalf("captured only %d in-session packets", len(pkts))
	}
	seen := map[[16]byte]int{}
	last := map[uint32]uint32{}
	for i, p := range pkts {
		if !p.encrypted {
			t.Fatalf("packet %d of session %#x is not encrypted", i, p.sessionID)
		}
		if j, dup := seen[p.iv]; dup {
			t.Fatalf("packets %d and %d share IV %x", j, i, p.iv)
		}
		seen[p.iv] = i
		prev, ok := last[p.sessionID]
		if !ok && p.seq != 1 {
			t.Errorf("session %#x starts at sequence %d, want 1", p.sessionID, p.seq)
		}
		if ok && p.seq <= prev {
			t.Errorf("session %#x: sequence %d after %d", p.sessionID, p.seq, prev)
		}
		last[p.sessionID] = p.seq
	}
	if len(last) != 2 {
		t.Errorf("packets of %d sessions, want 2", len(last))
	}
}

// TestSealIVs seals many packets in one session and checks every IV is
// new and every packet decrypts (in-package: no network involved).
func TestSealIVs(t *testing.T) {
	suite, _ := LookupSuite(17)
	k, err := deriveKeys(suite, make([]byte, 16), make([]byte, 16), 0x14, "admin", make([]byte, 20))
	if err != nil {
		t.Fatal(err)
	}
	s := &Session{suite: suite, k: k, active: true, bmcID: 7, consoleID: 7}
	seen := map[[16]byte]bool{}
	for i := 0; i < 20000; i++ {
		pkt, err := s.seal(0, []byte("keystrokes"))
		if err != nil {
			t.Fatal(err)
		}
		var iv [16]byte
		copy(iv[:], pkt[16:32])
		if seen[iv] {
			t.Fatalf("IV %x repeated at packet %d", iv, i)
		}
		seen[iv] = true
		if seq := binary.LittleEndian.Uint32(pkt[10:]); seq != uint32(i+1) {
			t.Fatalf("packet %d has sequence %d", i, seq)
		}
		// The session accepts its own packets (same keys both ways here).
		pt, payload, ok := s.accept(append([]byte(nil), pkt...))
		if !ok || pt != 0 || string(payload) != "keystrokes" {
			t.Fatalf("packet %d does not round-trip: ok=%v payload=%q", i, ok, payload)
		}
	}
}
