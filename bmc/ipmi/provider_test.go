package ipmi

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/rmm-project/rmm/bmc"
	"github.com/rmm-project/rmm/bmc/ipmi/internal/testbmc"
	"github.com/rmm-project/rmm/secret"
)

func TestOpenClose(t *testing.T) {
	for _, tc := range []struct {
		name  string
		suite int
		want  int
	}{
		{"auto", 0, 17},
		{"suite 3", 3, 3},
		{"suite 17", 17, 17},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := startBMC(t, testbmc.Options{})
			p := open(t, b, tc.suite)
			if got := p.sess.Suite().ID; got != tc.want {
				t.Errorf("negotiated suite %d, want %d", got, tc.want)
			}
			if n := b.Sessions(); n != 1 {
				t.Errorf("%d sessions on the BMC while open, want 1", n)
			}
			st, err := p.PowerStateGet(ctx(t))
			if err != nil || st != "on" {
				t.Fatalf("power status %q, %v; want on", st, err)
			}
			if err := p.Close(ctx(t)); err != nil {
				t.Fatalf("close: %v", err)
			}
			if err := p.Close(ctx(t)); err != nil {
				t.Fatalf("second close: %v", err)
			}
			if _, err := p.PowerStateGet(ctx(t)); !errors.Is(err, bmc.ErrProtocol) {
				t.Errorf("status after close: %v, want ErrProtocol", err)
			}
		})
	}
}

func TestOpenErrors(t *testing.T) {
	for _, tc := range []struct {
		name     string
		bmc      testbmc.Options
		user     string
		password string
		suite    int
		want     error
		hint     string
	}{
		{"wrong password", testbmc.Options{}, testbmc.User, "Tr0ub4dor&3", 3, bmc.ErrAuth, "password"},
		{"wrong password suite 17", testbmc.Options{}, testbmc.User, "Tr0ub4dor&3", 17, bmc.ErrAuth, "password"},
		{"unknown user", testbmc.Options{}, "nobody", testbmc.Password, 3, bmc.ErrAuth, ""},
		{"suite the bmc refuses", testbmc.Options{Suites: []int{3}}, testbmc.User, testbmc.Password, 17, bmc.ErrUnsupported, "cipher_suite"},
		{"password too long", testbmc.Options{}, testbmc.User, strings.Repeat("x", 21), 3, bmc.ErrAuth, "20 bytes"},
		{"session table full", testbmc.Options{MaxSessions: -1}, testbmc.User, testbmc.Password, 3, bmc.ErrBusy, "session table"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			noLeak(t)
			o := tc.bmc
			full := o.MaxSessions < 0
			if full {
				o.MaxSessions = 1
			}
			b := startBMC(t, o)
			if full {
				holder := open(t, b, 3)
				defer holder.Close(context.Background())
			}
			tg := target(b, tc.suite)
			tg.Username, tg.Password = tc.user, secret.New(tc.password)
			p, err := New(tg)
			if err != nil {
				t.Fatal(err)
			}
			err = p.Open(ctx(t))
			if !errors.Is(err, tc.want) {
				t.Fatalf("open: %v, want %v", err, tc.want)
			}
			if strings.Contains(err.Error(), tc.password) && len(tc.password) > 3 {
				t.Errorf("error shows the password: %v", err)
			}
			if hint := bmc.Hint(tg.Wrap("open", err)); !strings.Contains(hint, tc.hint) {
				t.Errorf("hint %q, want it to mention %q", hint, tc.hint)
			}
			if err := p.Close(ctx(t)); err != nil {
				t.Errorf("close after failed open: %v", err)
			}
		})
	}
}

// TestAutoSuiteFallback: a BMC without SHA-256 suites refuses 17 and auto
// mode moves on to 3.
func TestAutoSuiteFallback(t *testing.T) {
	b := startBMC(t, testbmc.Options{Suites: []int{3}})
	p := open(t, b, 0)
	if got := p.sess.Suite().ID; got != 3 {
		t.Errorf("suite %d, want 3", got)
	}
}

func TestNewRejects(t *testing.T) {
	for _, tc := range []struct {
		name string
		t    bmc.Target
		want error
	}{
		{"no address", bmc.Target{Name: "db1"}, bmc.ErrHostname},
		{"suite 0 is auto, suite 5 unknown", bmc.Target{Name: "db1", Addr: netip.MustParseAddr("127.0.12.250"), CipherSuite: 5}, bmc.ErrUnsupported},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := New(tc.t); !errors.Is(err, tc.want) {
				t.Errorf("New: %v, want %v", err, tc.want)
			}
		})
	}
}

// TestUnreachable: a BMC that never answers costs one bounded deadline and
// reports a timeout; an address where nothing listens is refused at once.
func TestUnreachable(t *testing.T) {
	t.Run("black hole", func(t *testing.T) {
		noLeak(t)
		ap := netip.AddrPortFrom(addrs.Next(), testbmc.Port())
		hole, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(ap))
		if err != nil {
			t.Fatal(err)
		}
		defer hole.Close()
		tg := bmc.Target{Name: "db1", Addr: ap.Addr(), IPMIPort: ap.Port(), Username: "u", Password: secret.New("p"), CipherSuite: 3}
		p, _ := New(tg)
		c, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
		defer cancel()
		start := time.Now()
		err = p.Open(c)
		if !errors.Is(err, bmc.ErrTimeout) || bmc.Classify(err) != bmc.OutcomeTimeout {
			t.Fatalf("open: %v, want a timeout", err)
		}
		if d := time.Since(start); d > 3*time.Second {
			t.Errorf("open took %s for a 1.5 s deadline", d)
		}
	})
	t.Run("nothing listening", func(t *testing.T) {
		noLeak(t)
		tg := bmc.Target{Name: "db1", Addr: addrs.Next(), IPMIPort: testbmc.Port(), Username: "u", Password: secret.New("p")}
		p, _ := New(tg)
		start := time.Now()
		err := p.Open(ctx(t))
		if !errors.Is(err, bmc.ErrUnreachable) {
			t.Fatalf("open: %v, want ErrUnreachable", err)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("refused open took %s", d)
		}
	})
}

// TestLossyLink: a link that loses every other packet, in either
// direction, still works through retransmissions.
func TestLossyLink(t *testing.T) {
	every2nd := func(n int) bool { return n%2 == 0 }
	for _, tc := range []struct {
		name string
		o    testbmc.Options
	}{
		{"requests lost", testbmc.Options{DropIn: every2nd}},
		{"answers lost", testbmc.Options{DropOut: every2nd}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			noLeak(t)
			o := tc.o
			b := testbmc.Start(t, testbmc.Options{Addr: addrs.Next(), DropIn: o.DropIn, DropOut: o.DropOut})
			p := open(t, b, 17)
			for i := 0; i < 5; i++ {
				if st, err := p.PowerStateGet(ctx(t)); err != nil || st != "on" {
					t.Fatalf("status %d: %q, %v", i, st, err)
				}
			}
			if ok, err := p.PowerSet(ctx(t), "off"); err != nil || !ok {
				t.Fatalf("power off: %v", err)
			}
			if b.PowerOn() {
				t.Error("still on after power off")
			}
			st := p.Stats()
			if st.Retransmits == 0 {
				t.Errorf("no retransmissions on a lossy link: %+v", st)
			}
			if err := p.Close(ctx(t)); err != nil {
				t.Fatal(err)
			}
			if tc.o.DropIn != nil {
				// Lost requests never reached the BMC: nothing may remain.
				if n := b.WaitSessions(0, time.Second); n != 0 {
					t.Errorf("%d sessions left", n)
				}
			}
			// Lost answers: every Open Session the BMC answered into the
			// void created a half-open session the client cannot know of;
			// the BMC reclaims those itself. Nothing to check there.
		})
	}
}
