package redfishsim

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rmm-project/rmm/sim/machine"
)

var vendorNames = []string{"dell", "hpe", "lenovo", "supermicro", "dmtf"}

// Addresses: this package uses 127.0.45.0-127.0.49.255; bmc/redfish uses
// 127.0.40-44.x, so both packages' tests can run at once.
var nextAddr atomic.Int32

func newAddr(t testing.TB) netip.Addr {
	t.Helper()
	n := nextAddr.Add(1) - 1
	if n >= 5*250 {
		t.Fatal("out of test addresses")
	}
	return netip.AddrFrom4([4]byte{127, 0, byte(45 + n/250), byte(2 + n%250)})
}

// port is 443 when this process may bind it, else 0 (any free port).
func port(ip netip.Addr) uint16 {
	ln, err := net.ListenTCP("tcp", net.TCPAddrFromAddrPort(netip.AddrPortFrom(ip, 443)))
	if err != nil {
		return 0
	}
	ln.Close()
	return 443
}

const (
	testUser = "admin"
	testPass = "sim-test-pw"
)

type fixture struct {
	srv *Server
	m   *machine.Machine
	c   *client
}

func start(t testing.TB, vendor string, mod ...func(*Config)) *fixture {
	t.Helper()
	ip := newAddr(t)
	m := machine.New(vendor, machine.DerivedIdentity(vendor+ip.String()), machine.WithCycleDelay(10*time.Millisecond))
	t.Cleanup(m.Close)
	cfg := Config{Addr: netip.AddrPortFrom(ip, port(ip)), Vendor: vendor, Username: testUser, Password: testPass, Machine: m}
	for _, f := range mod {
		f(&cfg)
	}
	srv, err := Start(cfg)
	if err != nil {
		t.Fatalf("start %s: %v", vendor, err)
	}
	t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return &fixture{srv: srv, m: m, c: newClient(srv)}
}

// client is a minimal Redfish client for testing the server: it dials
// the server's IP and pins its certificate.
type client struct {
	base  string
	hc    *http.Client
	token string
	basic bool
}

func newClient(s *Server) *client {
	fp := s.Fingerprint()
	addr := s.Addr().String()
	tr := &http.Transport{
		Proxy: nil,
		DialContext: func(ctx context.Context, network, a string) (net.Conn, error) {
			if a != addr {
				return nil, fmt.Errorf("test client: refusing to dial %s", a)
			}
			var d net.Dialer
			return d.DialContext(ctx, network, a)
		},
		TLSClientConfig: &tls.Config{
			InsecureSkipVerify: true, // pinned below
			VerifyConnection: func(cs tls.ConnectionState) error {
				sum := sha256.Sum256(cs.PeerCertificates[0].Raw)
				if hex.EncodeToString(sum[:]) != fp {
					return fmt.Errorf("certificate does not match the server's fingerprint")
				}
				return nil
			},
		},
	}
	return &client{
		base: "https://" + addr,
		hc: &http.Client{Transport: tr, Timeout: 10 * time.Second,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
	}
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) json(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("response is not a JSON object: %v\n%s", err, r.body)
	}
	return m
}

func (c *client) do(t testing.TB, method, path string, body any, hdr ...string) response {
	t.Helper()
	r, err := c.try(method, path, body, hdr...)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	return r
}

func (c *client) try(method, path string, body any, hdr ...string) (response, error) {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, c.base+path, rd)
	if err != nil {
		return response{}, err
	}
	if c.token != "" {
		req.Header.Set("X-Auth-Token", c.token)
	} else if c.basic {
		req.SetBasicAuth(testUser, testPass)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return response{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return response{}, err
	}
	return response{status: resp.StatusCode, header: resp.Header, body: b}, nil
}

// login opens a session and makes the client use it.
func (c *client) login(t testing.TB) response {
	t.Helper()
	r := c.do(t, "POST", "/redfish/v1/SessionService/Sessions", map[string]string{"UserName": testUser, "Password": testPass})
	if r.status != http.StatusCreated {
		t.Fatalf("login: %d %s", r.status, r.body)
	}
	c.token = r.header.Get("X-Auth-Token")
	return r
}

// sessionPath returns the path of a Location header, absolute or not.
func sessionPath(loc string) string {
	if i := strings.Index(loc, "/redfish/"); i >= 0 {
		return loc[i:]
	}
	return loc
}
