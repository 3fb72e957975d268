package ipmisim

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bougou/go-ipmi/pkg/client"
	"github.com/bougou/go-ipmi/pkg/types"

	"github.com/rmm-project/rmm/sim/machine"
)

// This package's tests own 127.0.20.0-127.0.29.255 (CONTRIBUTING.md).
var lastHost atomic.Uint32

// nextAddr returns a fresh loopback address in the package's block,
// round-robin (go test -count=N reuses addresses long closed).
func nextAddr(t testing.TB) netip.Addr {
	n := (lastHost.Add(1) - 1) % (10 * 254)
	return netip.AddrFrom4([4]byte{127, 0, 20 + byte(n/254), 1 + byte(n%254)})
}

// testPort is 623 where this process may bind it, else 6230.
func testPort() uint16 {
	if os.Geteuid() == 0 {
		return 623
	}
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_unprivileged_port_start")
	if err == nil {
		if n, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && n <= 623 {
			return 623
		}
	}
	return 6230
}

const (
	testUser = "admin"
	testPass = "s3cret-pass"
)

// startBMC starts a BMC over a fresh machine on a fresh address; edit may
// adjust the config. Both are closed when the test ends.
func startBMC(t testing.TB, edit func(*Config), mopts ...machine.Option) *BMC {
	t.Helper()
	addr := nextAddr(t)
	name := "sim-" + addr.String()
	m := machine.New(name, machine.DerivedIdentity(name), append([]machine.Option{machine.WithCycleDelay(100 * time.Millisecond)}, mopts...)...)
	cfg := Config{Addr: netip.AddrPortFrom(addr, testPort()), Machine: m, Username: testUser, Password: testPass}
	if edit != nil {
		edit(&cfg)
	}
	b, err := Start(cfg)
	if err != nil {
		m.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
		m.Close()
	})
	return b
}

// newClient is a go-ipmi client for b (not connected). One per goroutine:
// go-ipmi's client mixes up sequence numbers when shared.
func newClient(t testing.TB, b *BMC, pass string, suite types.CipherSuiteID) *client.Client {
	t.Helper()
	c, err := client.NewClient(b.Addr().Addr().String(), int(b.Addr().Port()), testUser, pass)
	if err != nil {
		t.Fatal(err)
	}
	// A generous timeout: go-ipmi's client takes a late answer to a
	// retransmitted request for the answer to the next one, and the test
	// machine may be busy. Tests of failures set short ones themselves.
	return c.WithCipherSuiteID(suite).WithTimeout(3 * time.Second).WithRetry(1)
}

// dial connects a go-ipmi client to b and closes it when the test ends
// (unless the test closed it first through closeClient).
func dial(t testing.TB, b *BMC, suite types.CipherSuiteID) *client.Client {
	t.Helper()
	c := newClient(t, b, testPass, suite)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := c.Connect(ctx); err != nil {
		t.Fatalf("connect to %s: %v", b.Addr(), err)
	}
	return c
}

// closeClient closes a session the way a well-behaved console does.
func closeClient(t testing.TB, c *client.Client) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := c.Close(ctx); err != nil {
		t.Errorf("close client: %v", err)
	}
}

// completionCode extracts the IPMI completion code from a go-ipmi error.
func completionCode(err error) (types.CompletionCode, bool) {
	var re *types.ResponseError
	if errors.As(err, &re) {
		return re.CompletionCode(), true
	}
	return 0, false
}

// raw sends one command and returns the response data or the error.
func raw(c *client.Client, netFn types.NetFn, cmd uint8, data ...byte) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	r, err := c.RawCommand(ctx, netFn, cmd, data, "test")
	if err != nil {
		return nil, err
	}
	return r.Response, nil
}

// eventually polls cond until it holds or the (generous) bound passes.
func eventually(t testing.TB, what string, bound time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(bound)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, bound)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func ctxT(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
