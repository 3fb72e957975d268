package rmcp

import (
	"context"
	"errors"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/rmm-project/rmm/bmc"
	"github.com/rmm-project/rmm/bmc/ipmi/internal/testbmc"
)

// mangler relays between a client and a BMC and, before every real answer,
// sends the client broken copies of it: truncated, bit-flipped, with a
// lying length field, plus random bytes. A client must drop them all
// (counting them) and still use the real answer.
type mangler struct {
	ln   *net.UDPConn
	bmc  netip.AddrPort
	only bool // send only garbage, never the real answer
	wg   sync.WaitGroup
}

func startMangler(t *testing.T, bmcAddr netip.AddrPort, only bool) netip.AddrPort {
	ap := netip.AddrPortFrom(addrs.Next(), testbmc.Port())
	ln, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(ap))
	if err != nil {
		t.Fatal(err)
	}
	m := &mangler{ln: ln, bmc: bmcAddr, only: only}
	m.wg.Add(1)
	go m.run()
	t.Cleanup(func() { ln.Close(); m.wg.Wait() })
	return ap
}

func (m *mangler) run() {
	defer m.wg.Done()
	up, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(m.bmc))
	if err != nil {
		return
	}
	defer up.Close()
	r := rand.New(rand.NewPCG(7, 7))
	buf, rbuf := make([]byte, 4096), make([]byte, 4096)
	for {
		n, client, err := m.ln.ReadFromUDP(buf)
		if err != nil {
			return
		}
		if _, err := up.Write(buf[:n]); err != nil {
			return
		}
		_ = up.SetReadDeadline(time.Now().Add(2 * time.Second))
		k, err := up.Read(rbuf)
		if err != nil {
			continue
		}
		real := rbuf[:k]
		for _, bad := range variants(r, real, !m.only) {
			_, _ = m.ln.WriteToUDP(bad, client)
		}
		if !m.only {
			_, _ = m.ln.WriteToUDP(real, client)
		}
	}
}

// variants returns broken copies of an answer. Bit flips are included only
// with flips: a flip in a reserved byte of an unauthenticated setup answer
// leaves a valid answer, which is not garbage.
func variants(r *rand.Rand, real []byte, flips bool) [][]byte {
	var out [][]byte
	for _, n := range []int{0, 1, 4, 5, 15, 16, 17, len(real) / 2, len(real) - 1} {
		if n >= 0 && n < len(real) {
			out = append(out, append([]byte(nil), real[:n]...))
		}
	}
	for i := 4; flips && i < len(real); i += 3 {
		b := append([]byte(nil), real...)
		b[i] ^= 0x5a
		out = append(out, b)
	}
	if len(real) > 16 {
		b := append([]byte(nil), real...)
		b[14], b[15] = 0xff, 0xff // payload length beyond the packet
		out = append(out, b)
	}
	for range 8 {
		b := make([]byte, r.IntN(200))
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		if len(b) > 4 && r.IntN(2) == 0 {
			copy(b, []byte{0x06, 0x00, 0xff, 0x07, 0x06}) // plausible header
		}
		out = append(out, b)
	}
	return out
}

func TestGarbageIsDropped(t *testing.T) {
	for _, suite := range []int{3, 17} {
		b := startBMC(t, testbmc.Options{})
		ap := startMangler(t, b.Addr, false)
		cfg := config(b, suite)
		cfg.Addr = ap
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		s, err := Open(ctx, cfg)
		if err != nil {
			cancel()
			t.Fatalf("suite %d: open through the mangler: %v", suite, err)
		}
		for i := 0; i < 10; i++ {
			if _, err := s.Raw(ctx, 0x00, 0x01, nil); err != nil {
				t.Fatalf("suite %d: request %d: %v", suite, i, err)
			}
		}
		st := s.Stats()
		_ = s.Close(ctx)
		cancel()
		if st.DroppedMalformed == 0 || st.DroppedIntegrity == 0 {
			t.Errorf("suite %d: garbage not counted: %+v", suite, st)
		}
		if n := b.WaitSessions(0, time.Second); n != 0 {
			t.Errorf("suite %d: %d sessions left", suite, n)
		}
	}
}

func TestOnlyGarbageTimesOut(t *testing.T) {
	b := startBMC(t, testbmc.Options{})
	ap := startMangler(t, b.Addr, true)
	cfg := config(b, 3)
	cfg.Addr = ap
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_, err := Open(ctx, cfg)
	if !errors.Is(err, bmc.ErrTimeout) {
		t.Fatalf("open against garbage: %v, want a timeout", err)
	}
}
