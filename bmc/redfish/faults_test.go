package redfish

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/rmm-project/rmm/bmc"
	"github.com/rmm-project/rmm/sim/redfishsim"
)

func TestDeadBMCTimesOut(t *testing.T) {
	t.Parallel()
	s := newSim(t, "dell", dead())
	p := s.provider(t)
	const deadline = 500 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	start := time.Now()
	err := p.Open(ctx)
	took := time.Since(start)
	if !errors.Is(err, bmc.ErrTimeout) {
		t.Fatalf("err = %v, want ErrTimeout", err)
	}
	if bmc.Classify(err) != bmc.OutcomeTimeout {
		t.Fatalf("classified %s", bmc.Classify(err))
	}
	if took > deadline+2*time.Second { // generous: only proves "bounded"
		t.Fatalf("a dead BMC took %s with a %s deadline", took, deadline)
	}
	if err := p.Close(context.Background()); err != nil {
		t.Fatalf("close after a failed open: %v", err)
	}
}

func TestSlowBMC(t *testing.T) {
	t.Parallel()
	s := newSim(t, "lenovo", withDelay(100*time.Millisecond))
	p := s.open(t)
	if _, err := p.PowerStateGet(testCtx(t, 10*time.Second)); err != nil {
		t.Fatalf("slow but within the deadline: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	p.sys = nil // force a walk of several requests
	if _, err := p.PowerStateGet(ctx); !errors.Is(err, bmc.ErrTimeout) {
		t.Fatalf("err = %v, want ErrTimeout", err)
	}
	if err := p.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := s.srv.OpenSessions(); n != 0 {
		t.Fatalf("sessions = %d", n)
	}
}

// TestHostnamesRefused: redirects and links that name a host instead of
// the BMC's IP are refused with ErrHostname, never followed, never
// resolved, and the session is still closed.
func TestHostnamesRefused(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		faults   redfishsim.Faults
		openFail bool
	}{
		{name: "redirect-everything", faults: redfishsim.Faults{RedirectHost: "bmc.example.com"}, openFail: true},
		{name: "redirect-systems", faults: redfishsim.Faults{RedirectHost: "bmc.example.com", Only: "/redfish/v1/Systems"}},
		{name: "redirect-to-ip-with-other-port", faults: redfishsim.Faults{RedirectHost: "127.0.0.1:9", Only: "/redfish/v1/Systems"}},
		{name: "absolute-links-everywhere", faults: redfishsim.Faults{AbsoluteHost: "bmc.example.com"}, openFail: true},
		{name: "absolute-links-in-systems", faults: redfishsim.Faults{AbsoluteHost: "bmc.example.com", Only: "/redfish/v1/Systems"}},
	}
	for _, v := range []string{"dell", "hpe"} {
		for _, tc := range tests {
			t.Run(v+"/"+tc.name, func(t *testing.T) {
				t.Parallel()
				s := newSim(t, v)
				s.srv.SetFaults(tc.faults)
				p := s.provider(t)
				ctx := testCtx(t, 10*time.Second)
				err := p.Open(ctx)
				if !tc.openFail {
					if err != nil {
						t.Fatalf("open: %v", err)
					}
					_, err = p.PowerStateGet(ctx)
				}
				if !errors.Is(err, bmc.ErrHostname) {
					t.Fatalf("err = %v, want ErrHostname", err)
				}
				if cerr := p.Close(ctx); cerr != nil {
					t.Fatalf("close: %v", cerr)
				}
				if n := s.srv.OpenSessions(); n != 0 {
					t.Fatalf("sessions = %d after a refused link", n)
				}
				if n := dnsAttempts.Load(); n != 0 {
					t.Fatalf("%d DNS lookups", n)
				}
			})
		}
	}
}

// TestAbsoluteLinksToItself: a BMC that writes its own address into every
// link (iLO does in Location) is fine.
func TestAbsoluteLinksToItself(t *testing.T) {
	t.Parallel()
	s := newSim(t, "supermicro")
	s.srv.SetFaults(redfishsim.Faults{AbsoluteHost: s.srv.Addr().String()})
	p := s.open(t)
	ctx := testCtx(t, 10*time.Second)
	if ok, err := p.PowerSet(ctx, "cycle"); !ok || err != nil {
		t.Fatalf("cycle: %v %v", ok, err)
	}
	if es, err := p.SEL(ctx); err != nil || len(es) != 82 {
		t.Fatalf("SEL: %d entries, %v", len(es), err)
	}
}

func TestBrokenResponses(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		faults redfishsim.Faults
		want   error
	}{
		{"malformed-json", redfishsim.Faults{MalformedJSON: true, Only: "/redfish/v1/Systems"}, bmc.ErrProtocol},
		{"truncated-body", redfishsim.Faults{TruncateBody: true, Only: "/redfish/v1/Systems"}, bmc.ErrProtocol},
		{"connection-reset", redfishsim.Faults{ResetConnections: true, Only: "/redfish/v1/Systems"}, bmc.ErrUnreachable},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newSim(t, "lenovo")
			p := s.open(t)
			s.srv.SetFaults(tc.faults)
			_, err := p.PowerStateGet(testCtx(t, 10*time.Second))
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if err := p.Close(context.Background()); err != nil {
				t.Fatal(err)
			}
			if n := s.srv.OpenSessions(); n != 0 {
				t.Fatalf("sessions = %d", n)
			}
		})
	}
}

func TestCertificatePin(t *testing.T) {
	t.Parallel()
	s := newSim(t, "hpe")
	other := newSim(t, "hpe")
	s.target.TLS.Fingerprint = other.srv.Fingerprint()
	err := s.provider(t).Open(testCtx(t, 5*time.Second))
	if !errors.Is(err, bmc.ErrTLSPin) {
		t.Fatalf("err = %v, want ErrTLSPin", err)
	}
	if !strings.Contains(err.Error(), s.srv.Fingerprint()) || !strings.Contains(err.Error(), other.srv.Fingerprint()) {
		t.Fatalf("error does not name both fingerprints: %v", err)
	}
	if bmc.Hint(s.target.Wrap("open", err)) == "" {
		t.Fatal("no hint")
	}
	if n := len(s.srv.Requests()); n != 0 {
		t.Fatalf("%d requests reached a BMC whose certificate did not match", n)
	}

	// The same pin in another spelling is accepted.
	s.target.TLS.Fingerprint = strings.ToUpper(colons(s.srv.Fingerprint()))
	s.open(t)
}

func colons(hex string) string {
	var b strings.Builder
	for i := 0; i < len(hex); i += 2 {
		if i > 0 {
			b.WriteByte(':')
		}
		b.WriteString(hex[i : i+2])
	}
	return b.String()
}

func TestTrustOnFirstUse(t *testing.T) {
	t.Parallel()
	s := newSim(t, "dmtf")
	trust := &memTrust{}
	s.target.TLS = bmc.TLSConfig{Trust: trust}

	// First use: recorded, accepted.
	p := s.open(t)
	if err := p.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if fp, ok := trust.Lookup(s.target.Name, s.target.RedfishAddr()); !ok || fp != s.srv.Fingerprint() || trust.remembered != 1 {
		t.Fatalf("trust store has %q (ok=%v, %d writes), want %s", fp, ok, trust.remembered, s.srv.Fingerprint())
	}
	// Known and unchanged: accepted, nothing written.
	s.open(t)
	if trust.remembered != 1 {
		t.Fatalf("%d writes after a second use", trust.remembered)
	}

	// The BMC comes back with a new certificate on the same address.
	old := s.srv.Fingerprint()
	ap := s.srv.Addr()
	s.srv.Close()
	cert, err := redfishsim.SelfSigned(ap.Addr())
	if err != nil {
		t.Fatal(err)
	}
	s2 := newSimAt(t, "dmtf", ap, withCert(cert))
	s2.target = s.target
	err = s2.provider(t).Open(testCtx(t, 5*time.Second))
	if !errors.Is(err, bmc.ErrTLSPin) {
		t.Fatalf("changed certificate: %v, want ErrTLSPin", err)
	}
	if !strings.Contains(err.Error(), old) || !strings.Contains(err.Error(), s2.srv.Fingerprint()) {
		t.Fatalf("error does not name both fingerprints: %v", err)
	}
	if n := s2.srv.OpenSessions(); n != 0 {
		t.Fatalf("sessions = %d", n)
	}
}

// newSimAt starts a simulator on a given address (a BMC restarting).
func newSimAt(t *testing.T, vendor string, ap netip.AddrPort, opts ...simOption) *bmcSim {
	t.Helper()
	return newSim(t, vendor, append(opts, at(ap))...)
}

func TestNoPinRefusedUnlessInsecure(t *testing.T) {
	t.Parallel()
	s := newSim(t, "supermicro")
	s.target.TLS = bmc.TLSConfig{}
	err := s.provider(t).Open(testCtx(t, 5*time.Second))
	if !errors.Is(err, bmc.ErrTLSPin) || bmc.Hint(s.target.Wrap("open", err)) == "" {
		t.Fatalf("err = %v, want ErrTLSPin with a hint", err)
	}
	s.target.TLS = bmc.TLSConfig{Insecure: true}
	s.open(t)
}

func TestContextCancelled(t *testing.T) {
	t.Parallel()
	s := newSim(t, "dell")
	p := s.open(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := p.PowerStateGet(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if got := bmc.Classify(context.Canceled); got != bmc.OutcomeCancelled {
		t.Fatal(got)
	}
}

func TestNewRefusesBadTargets(t *testing.T) {
	t.Parallel()
	if _, err := New(bmc.Target{Name: "x", Username: "u"}); !errors.Is(err, bmc.ErrHostname) {
		t.Errorf("no address: %v", err)
	}
	if _, err := New(bmc.Target{Name: "x", Addr: netip.MustParseAddr("127.0.40.1")}); !errors.Is(err, bmc.ErrAuth) {
		t.Errorf("no user: %v", err)
	}
	p, err := New(bmc.Target{Name: "x", Addr: netip.MustParseAddr("127.0.40.1"), Username: "u"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.PowerStateGet(context.Background()); !errors.Is(err, bmc.ErrProtocol) {
		t.Errorf("call before Open: %v", err)
	}
	if p.Name() != "rmm-redfish" {
		t.Errorf("name %q", p.Name())
	}
}
