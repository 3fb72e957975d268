package sim

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bougou/go-ipmi/pkg/client"
	"github.com/bougou/go-ipmi/pkg/types"

	"github.com/rmm-project/rmm/sim/machine"
)

// This package's tests own 127.0.30.0-127.0.39.255 (CONTRIBUTING.md); each
// test takes a fresh slice of it, whole /24s. The tests do not run in
// parallel and close their fleets, so the blocks are reused round-robin
// (go test -count=N).
var (
	blockMu   sync.Mutex
	nextBlock uint32
)

// block returns the first address of a fresh range of n addresses.
func block(t testing.TB, n int) netip.Addr {
	t.Helper()
	per := uint32((n + 253) / 254)
	if per > 10 {
		t.Fatalf("%d addresses do not fit 127.0.30-39.x", n)
	}
	blockMu.Lock()
	defer blockMu.Unlock()
	if nextBlock+per > 10 {
		nextBlock = 0
	}
	first := nextBlock
	nextBlock += per
	return netip.AddrFrom4([4]byte{127, 0, byte(30 + first), 1})
}

func start(t testing.TB, specs []HostSpec, opts ...Option) *Fleet {
	t.Helper()
	f, err := Start(context.Background(), specs, append([]Option{WithCycleDelay(50 * time.Millisecond)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := f.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return f
}

var tmpl = HostSpec{IPMI: true, Redfish: true, Username: "admin", Password: "fleet-pass"}

// ipmiClient connects a go-ipmi client (one per goroutine; go-ipmi's client
// is not safe to share) or returns the error, releasing the socket of a
// failed connect.
func ipmiClient(t testing.TB, h *Host, pass string) (*client.Client, error) {
	t.Helper()
	// A generous timeout: go-ipmi's client takes a late answer to a
	// retransmitted request for the answer to the next one, and this box
	// may be busy.
	return ipmiClientTimeout(t, h, pass, 5*time.Second)
}

func ipmiClientTimeout(t testing.TB, h *Host, pass string, timeout time.Duration) (*client.Client, error) {
	t.Helper()
	ap := h.IPMIAddr()
	c, err := client.NewClient(ap.Addr().String(), int(ap.Port()), h.Spec.Username, pass)
	if err != nil {
		t.Fatal(err)
	}
	c = c.WithCipherSuiteID(types.CipherSuiteID17).WithTimeout(timeout).WithRetry(1)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.Connect(ctx); err != nil {
		done, stop := context.WithCancel(context.Background())
		stop()
		_ = c.Close(done)
		return nil, err
	}
	return c, nil
}

func closeIPMI(t testing.TB, c *client.Client) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Close(ctx); err != nil {
		t.Errorf("close ipmi session: %v", err)
	}
}

// httpsClient trusts exactly the certificate with fingerprint fp and never
// uses a proxy.
func httpsClient(fp string, timeout time.Duration) *http.Client {
	return &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			Proxy: nil,
			TLSClientConfig: &tls.Config{
				InsecureSkipVerify: true, // replaced by the pin below
				VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
					sum := sha256.Sum256(raw[0])
					if hex.EncodeToString(sum[:]) != fp {
						return errors.New("certificate does not match the pin")
					}
					return nil
				},
			},
		},
	}
}

// redfishGet fetches path from h's Redfish BMC with Basic auth.
func redfishGet(t testing.TB, h *Host, path string, pass string) (map[string]any, error) {
	t.Helper()
	c := httpsClient(h.Redfish.Fingerprint(), 5*time.Second)
	defer c.CloseIdleConnections()
	req, err := http.NewRequest("GET", "https://"+h.RedfishAddr().String()+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth(h.Spec.Username, pass)
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return nil, fmt.Errorf("GET %s: %s", path, resp.Status)
	}
	var doc map[string]any
	return doc, json.NewDecoder(resp.Body).Decode(&doc)
}

// redfishSystem returns the first ComputerSystem.
func redfishSystem(t testing.TB, h *Host, pass string) (map[string]any, error) {
	t.Helper()
	coll, err := redfishGet(t, h, "/redfish/v1/Systems", pass)
	if err != nil {
		return nil, err
	}
	members, _ := coll["Members"].([]any)
	if len(members) == 0 {
		return nil, errors.New("no systems")
	}
	return redfishGet(t, h, members[0].(map[string]any)["@odata.id"].(string), pass)
}

func TestScenarios(t *testing.T) {
	base := block(t, 10)
	names := []string{"healthy", "off", "dead", "slow", "wrong", "panicked", "solbusy", "overheat", "replaced"}
	var specs []HostSpec
	for i, a := range Addrs(base, len(names)) {
		s := tmpl
		s.Name, s.Addr = names[i], a
		specs = append(specs, s)
	}
	specs[1].PowerOff = true
	specs[2].Scenarios = []Scenario{Dead}
	specs[3].Scenarios, specs[3].Delay = []Scenario{Slow}, 150*time.Millisecond
	specs[4].Scenarios = []Scenario{WrongCredentials}
	specs[5].Scenarios = []Scenario{Panicked}
	specs[6].Scenarios = []Scenario{SOLBusy}
	specs[7].Scenarios = []Scenario{Overheat}
	specs[8].Scenarios = []Scenario{Replaced}
	specs[8].Vendor = "dell"
	f := start(t, specs)

	// withIPMI runs fn on a session to the host's BMC.
	withIPMI := func(t *testing.T, h *Host, fn func(c *client.Client, ctx context.Context)) {
		t.Helper()
		c, err := ipmiClient(t, h, h.BMCPassword())
		if err != nil {
			t.Fatal(err)
		}
		defer closeIPMI(t, c)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		fn(c, ctx)
	}
	guidOf := func(t *testing.T, c *client.Client, ctx context.Context) string {
		t.Helper()
		g, err := c.GetSystemGUID(ctx)
		if err != nil {
			t.Fatal(err)
		}
		u, err := types.ParseGUID(g.GUID[:], types.GUIDModeIPMI)
		if err != nil {
			t.Fatal(err)
		}
		return u.String()
	}

	t.Run("healthy", func(t *testing.T) {
		h := f.Host("healthy")
		if h.IPMIAddr() != netip.AddrPortFrom(h.Spec.Addr, DefaultIPMIPort()) || h.RedfishAddr() != netip.AddrPortFrom(h.Spec.Addr, DefaultRedfishPort()) {
			t.Fatalf("endpoints %s %s", h.IPMIAddr(), h.RedfishAddr())
		}
		withIPMI(t, h, func(c *client.Client, ctx context.Context) {
			if st, err := c.GetChassisStatus(ctx); err != nil || !st.PowerIsOn {
				t.Fatalf("power: %+v %v", st, err)
			}
			if g := guidOf(t, c, ctx); g != h.Expected().GUID {
				t.Fatalf("GUID %s, expected %s", g, h.Expected().GUID)
			}
			// One chassis behind both BMCs: IPMI power off shows in Redfish.
			if _, err := c.ChassisControl(ctx, 0); err != nil {
				t.Fatal(err)
			}
		})
		sys, err := redfishSystem(t, h, h.BMCPassword())
		if err != nil {
			t.Fatal(err)
		}
		if sys["PowerState"] != "Off" || !strings.EqualFold(fmt.Sprint(sys["UUID"]), h.Expected().UUID) {
			t.Fatalf("redfish system: PowerState %v UUID %v", sys["PowerState"], sys["UUID"])
		}
	})
	t.Run("off", func(t *testing.T) {
		withIPMI(t, f.Host("off"), func(c *client.Client, ctx context.Context) {
			if st, err := c.GetChassisStatus(ctx); err != nil || st.PowerIsOn {
				t.Fatalf("power: %+v %v", st, err)
			}
		})
	})
	t.Run("dead", func(t *testing.T) {
		h := f.Host("dead")
		if _, err := ipmiClientTimeout(t, h, h.BMCPassword(), 300*time.Millisecond); err == nil {
			t.Fatal("a dead IPMI BMC answered")
		}
		if st := h.IPMI.Stats(); st.PacketsReceived == 0 || st.PacketsDropped != st.PacketsReceived {
			t.Fatalf("dead BMC stats %+v", st)
		}
		// TCP connects (the socket listens), TLS never completes.
		d := net.Dialer{Timeout: time.Second}
		conn, err := d.Dial("tcp", h.RedfishAddr().String())
		if err != nil {
			t.Fatalf("dead redfish BMC refused TCP: %v", err)
		}
		defer conn.Close()
		tc := tls.Client(conn, &tls.Config{InsecureSkipVerify: true})
		_ = tc.SetDeadline(time.Now().Add(300 * time.Millisecond))
		if err := tc.Handshake(); err == nil {
			t.Fatal("dead redfish BMC completed a TLS handshake")
		}
	})
	t.Run("slow", func(t *testing.T) {
		h := f.Host("slow")
		start := time.Now()
		withIPMI(t, h, func(c *client.Client, ctx context.Context) {})
		if el := time.Since(start); el < 4*150*time.Millisecond {
			t.Fatalf("session open and close took %v on a slow BMC", el)
		}
		if f := h.IPMI.Faults(); f.Delay != 150*time.Millisecond {
			t.Fatalf("faults %+v", f)
		}
	})
	t.Run("wrong-credentials", func(t *testing.T) {
		h := f.Host("wrong")
		if h.BMCPassword() == h.Spec.Password {
			t.Fatal("the BMC accepts the inventory's password")
		}
		if _, err := ipmiClient(t, h, h.Spec.Password); err == nil {
			t.Fatal("IPMI accepted the inventory's password")
		}
		if _, err := redfishGet(t, h, "/redfish/v1/Systems", h.Spec.Password); err == nil || !strings.Contains(err.Error(), "401") {
			t.Fatalf("redfish with the inventory's password: %v", err)
		}
		withIPMI(t, h, func(*client.Client, context.Context) {}) // the BMC's own password works
	})
	t.Run("panicked", func(t *testing.T) {
		h := f.Host("panicked")
		withIPMI(t, h, func(c *client.Client, ctx context.Context) {
			sel, err := c.GetSELEntries(ctx, 0)
			if err != nil {
				t.Fatal(err)
			}
			if len(sel) < 2 || sel[0].Standard == nil || sel[0].Standard.SensorType != 0x20 || sel[0].Standard.EventData.EventData1 != 0xa1 {
				t.Fatalf("SEL %+v", sel)
			}
		})
		if !strings.Contains(h.Machine.Console().History(), "Kernel panic") {
			t.Fatal("no panic on the console")
		}
	})
	t.Run("sol-busy", func(t *testing.T) {
		st := f.Host("solbusy").IPMI.Stats()
		if !st.SOLPhantom || st.PhantomSession == 0 || st.SessionsOpen != 0 {
			t.Fatalf("stats %+v", st)
		}
	})
	t.Run("overheat", func(t *testing.T) {
		withIPMI(t, f.Host("overheat"), func(c *client.Client, ctx context.Context) {
			r, err := c.GetSensorReading(ctx, 0x10)
			if err != nil {
				t.Fatal(err)
			}
			if !r.Above_UCR {
				t.Fatalf("CPU temp reading %+v: want above upper critical", r)
			}
		})
	})
	t.Run("replaced", func(t *testing.T) {
		h := f.Host("replaced")
		want := h.Expected()
		if want != machine.DerivedIdentity("replaced") {
			t.Fatalf("expected identity %+v", want)
		}
		withIPMI(t, h, func(c *client.Client, ctx context.Context) {
			if g := guidOf(t, c, ctx); g == want.GUID || g != h.Machine.ID.GUID {
				t.Fatalf("GUID %s: expected %s, machine %s", g, want.GUID, h.Machine.ID.GUID)
			}
		})
		sys, err := redfishSystem(t, h, h.BMCPassword())
		if err != nil {
			t.Fatal(err)
		}
		if sys["SerialNumber"] == want.Serial || sys["SerialNumber"] != h.Machine.ID.Serial {
			t.Fatalf("redfish serial %v, inventory expects %s", sys["SerialNumber"], want.Serial)
		}
	})
	if n := f.OpenSessions(); n != 0 {
		t.Fatalf("%d sessions left open by the test's own clients", n)
	}
}

func TestOpenSessions(t *testing.T) {
	specs := Generate(block(t, 3), 3, tmpl)
	f := start(t, specs)
	hosts := f.Hosts()

	c1, err := ipmiClient(t, hosts[0], hosts[0].BMCPassword())
	if err != nil {
		t.Fatal(err)
	}
	c2, err := ipmiClient(t, hosts[1], hosts[1].BMCPassword())
	if err != nil {
		t.Fatal(err)
	}
	// A Redfish session on the third host.
	h := hosts[2]
	hc := httpsClient(h.Redfish.Fingerprint(), 5*time.Second)
	defer hc.CloseIdleConnections()
	root, err := redfishGet(t, h, "/redfish/v1/", h.BMCPassword())
	if err != nil {
		t.Fatal(err)
	}
	sessPath := root["Links"].(map[string]any)["Sessions"].(map[string]any)["@odata.id"].(string)
	body, _ := json.Marshal(map[string]string{"UserName": h.Spec.Username, "Password": h.BMCPassword()})
	resp, err := hc.Post("https://"+h.RedfishAddr().String()+sessPath, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("redfish login: %s", resp.Status)
	}
	token, loc := resp.Header.Get("X-Auth-Token"), resp.Header.Get("Location")

	if n := f.OpenSessions(); n != 3 {
		t.Fatalf("OpenSessions %d, want 3", n)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	err = f.WaitSessionsClosed(ctx)
	if err == nil || !strings.Contains(err.Error(), "host0001") || !strings.Contains(err.Error(), "host0003 (ipmi") ||
		!strings.Contains(err.Error(), "0 ipmi, 1 redfish") {
		t.Fatalf("wait with sessions open: %v", err)
	}

	closeIPMI(t, c1)
	closeIPMI(t, c2)
	if !strings.HasPrefix(loc, "https://") {
		loc = "https://" + h.RedfishAddr().String() + loc
	}
	req, _ := http.NewRequest("DELETE", loc, nil)
	req.Header.Set("X-Auth-Token", token)
	resp, err = hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if err := f.WaitSessionsClosed(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestStartErrors(t *testing.T) {
	base := block(t, 4)
	a := Addrs(base, 4)
	spec := func(name string, addr netip.Addr) HostSpec {
		s := tmpl
		s.Name, s.Addr, s.Redfish = name, addr, false
		return s
	}
	tests := []struct {
		name  string
		specs []HostSpec
		want  string
	}{
		{"duplicate name", []HostSpec{spec("x", a[0]), spec("x", a[1])}, "host x: duplicate name"},
		{"duplicate endpoint", []HostSpec{spec("x", a[0]), spec("y", a[0])}, "endpoint " + a[0].String()},
		{"no address", []HostSpec{spec("x", netip.Addr{})}, "host x: no BMC address"},
		{"unknown scenario", []HostSpec{func() HostSpec { s := spec("x", a[0]); s.Scenarios = []Scenario{"on-fire"}; return s }()}, `unknown scenario "on-fire"`},
		{"no user", []HostSpec{func() HostSpec { s := spec("x", a[0]); s.Username = ""; return s }()}, "no BMC user name"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Start(context.Background(), tc.specs)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}

	t.Run("bind error names host and address, closes the rest", func(t *testing.T) {
		taken := netip.AddrPortFrom(a[3], DefaultIPMIPort())
		c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(taken))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		specs := []HostSpec{spec("ok1", a[0]), spec("ok2", a[1]), spec("ok3", a[2]), spec("victim", a[3])}
		_, err = Start(context.Background(), specs, WithConcurrency(1))
		if err == nil || !strings.Contains(err.Error(), "victim") || !strings.Contains(err.Error(), taken.String()) {
			t.Fatalf("error %v, want the host and %s named", err, taken)
		}
		for _, s := range specs[:3] {
			ap := netip.AddrPortFrom(s.Addr, DefaultIPMIPort())
			c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(ap))
			if err != nil {
				t.Fatalf("%s still bound after the failed start: %v", ap, err)
			}
			c.Close()
		}
	})
	t.Run("cancelled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := Start(ctx, []HostSpec{spec("x", a[0])}); !errors.Is(err, context.Canceled) {
			t.Fatalf("start with a cancelled context: %v", err)
		}
	})
}

func TestAddrs(t *testing.T) {
	tests := []struct {
		base        string
		n           int
		first, last string
	}{
		{"127.0.30.250", 9, "127.0.30.250", "127.0.31.4"},
		{"127.0.30.0", 2, "127.0.30.1", "127.0.30.2"},
		{"127.0.30.255", 1, "127.0.31.1", "127.0.31.1"},
		{"127.1.0.1", 1000, "127.1.0.1", "127.1.3.238"},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%s+%d", tc.base, tc.n), func(t *testing.T) {
			got := Addrs(netip.MustParseAddr(tc.base), tc.n)
			if len(got) != tc.n || got[0].String() != tc.first || got[len(got)-1].String() != tc.last {
				t.Fatalf("%d addresses %s..%s", len(got), got[0], got[len(got)-1])
			}
			for i, a := range got {
				if b := a.As4()[3]; b == 0 || b == 255 {
					t.Fatalf("%s", a)
				}
				if i > 0 && !got[i-1].Less(a) {
					t.Fatalf("not ascending at %s", a)
				}
			}
		})
	}
	for _, bad := range []struct {
		base string
		n    int
	}{{"10.0.0.1", 1}, {"::1", 1}, {"127.255.255.250", 10}} {
		t.Run("panics "+bad.base, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Fatal("no panic")
				}
			}()
			Addrs(netip.MustParseAddr(bad.base), bad.n)
		})
	}
}

func TestGenerate(t *testing.T) {
	tm := tmpl
	tm.Scenarios = []Scenario{Slow}
	specs := Generate(netip.MustParseAddr("127.0.39.253"), 3, tm)
	if specs[0].Name != "host0001" || specs[2].Name != "host0003" || specs[2].Addr.String() != "127.0.40.1" {
		t.Fatalf("%+v", specs)
	}
	specs[0].Scenarios[0] = Dead
	if specs[1].Scenarios[0] != Slow || tm.Scenarios[0] != Slow {
		t.Fatal("scenario slices shared")
	}
}

func TestOtherPassword(t *testing.T) {
	for _, p := range []string{"", "secret", "12345678901234567890", "1234567890123456789x", "123456789012345678901234"} {
		q := otherPassword(p)
		if q == p || len(q) > 20 || len(q) == 0 {
			t.Errorf("%q -> %q", p, q)
		}
	}
}

// The fleet's goroutines all stop on Close, and Close is idempotent.
func TestCloseStopsGoroutines(t *testing.T) {
	before := runtime.NumGoroutine()
	specs := Generate(block(t, 20), 20, tmpl)
	specs[0].Scenarios = []Scenario{SOLBusy, Slow, Dead}
	f, err := Start(context.Background(), specs)
	if err != nil {
		t.Fatal(err)
	}
	if runtime.NumGoroutine() <= before {
		t.Fatal("a running fleet has no goroutines?")
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		buf := make([]byte, 1<<20)
		t.Fatalf("%d goroutines after Close, %d before:\n%s", n, before, buf[:runtime.Stack(buf, true)])
	}
	_ = slices.Clone(specs)
}
