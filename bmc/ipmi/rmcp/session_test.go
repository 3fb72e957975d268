package rmcp

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/rmm-project/rmm/bmc"
	"github.com/rmm-project/rmm/bmc/ipmi/internal/testbmc"
	"github.com/rmm-project/rmm/secret"
)

// addrs is this package's share of bmc/ipmi's loopback block
// (127.0.10.x-127.0.11.x); the provider's tests use 127.0.12-15.x.
var addrs = &testbmc.Block{First: 10, Last: 11}

func startBMC(t *testing.T, o testbmc.Options) *testbmc.BMC {
	t.Helper()
	o.Addr = addrs.Next()
	return testbmc.Start(t, o)
}

func config(b *testbmc.BMC, suite int) Config {
	return Config{Addr: b.Addr, Username: testbmc.User, Password: secret.New(testbmc.Password), CipherSuite: suite}
}

func TestOpenClose(t *testing.T) {
	for _, suite := range []int{0, 3, 17} {
		t.Run(map[int]string{0: "auto", 3: "suite3", 17: "suite17"}[suite], func(t *testing.T) {
			b := startBMC(t, testbmc.Options{})
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			s, err := Open(ctx, config(b, suite))
			if err != nil {
				t.Fatalf("open: %v", err)
			}
			want := suite
			if want == 0 {
				want = 17
			}
			if s.Suite().ID != want {
				t.Errorf("suite %d, want %d", s.Suite().ID, want)
			}
			if n := b.Sessions(); n != 1 {
				t.Errorf("bmc has %d sessions while open, want 1", n)
			}
			data, err := s.Raw(ctx, 0x00, 0x01, nil) // Get Chassis Status
			if err != nil {
				t.Fatalf("get chassis status: %v", err)
			}
			if len(data) < 3 || data[0]&1 != 1 {
				t.Errorf("chassis status %x: want power on", data)
			}
			if err := s.Close(ctx); err != nil {
				t.Errorf("close: %v", err)
			}
			if err := s.Close(ctx); err != nil {
				t.Errorf("second close: %v", err)
			}
			if n := b.WaitSessions(0, time.Second); n != 0 {
				t.Errorf("bmc has %d sessions after close, want 0", n)
			}
			if _, err := s.Raw(ctx, 0x00, 0x01, nil); !errors.Is(err, bmc.ErrProtocol) {
				t.Errorf("call after close: %v, want ErrProtocol", err)
			}
			t.Logf("stats: %+v", s.Stats())
		})
	}
}
