package ipmi

import (
	"errors"
	"net/netip"
	"testing"

	"github.com/rmm-project/rmm/bmc"
	"github.com/rmm-project/rmm/bmc/ipmi/internal/testbmc"
)

func TestPing(t *testing.T) {
	noLeak(t)
	b := startBMC(t, testbmc.Options{})
	r, err := Ping(ctx(t), b.Addr)
	if err != nil {
		t.Fatal(err)
	}
	// 4542 is the ASF enterprise number; read little-endian (go-ipmi's
	// client does) it would be 3203334144.
	if r.IANA != 4542 || !r.IPMI || r.RTT <= 0 {
		t.Errorf("pong %+v, want IANA 4542 with IPMI", r)
	}
	if _, err := Ping(ctx(t), netip.AddrPortFrom(addrs.Next(), testbmc.Port())); !errors.Is(err, bmc.ErrUnreachable) {
		t.Errorf("ping to nothing: %v, want ErrUnreachable", err)
	}
}
