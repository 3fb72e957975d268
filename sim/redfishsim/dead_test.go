package redfishsim

import (
	"bufio"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestSetDead kills a running BMC and brings it back: dead, a new
// connection is accepted but gets no TLS handshake, and a connection open
// before gets no answer to its next request; alive again, new connections
// work and the held request is answered.
func TestSetDead(t *testing.T) {
	f := start(t, "dmtf")
	dialTLS := func(wait time.Duration) (*tls.Conn, error) {
		c, err := net.DialTimeout("tcp", f.srv.Addr().String(), 2*time.Second)
		if err != nil {
			t.Fatalf("TCP connect: %v (a dead BMC still accepts)", err)
		}
		tc := tls.Client(c, &tls.Config{InsecureSkipVerify: true}) // a handshake probe, no data trusted
		_ = tc.SetDeadline(time.Now().Add(wait))
		if err := tc.Handshake(); err != nil {
			tc.Close()
			return nil, err
		}
		_ = tc.SetDeadline(time.Time{})
		return tc, nil
	}
	request := func(c *tls.Conn) {
		t.Helper()
		if _, err := c.Write([]byte("GET /redfish/v1 HTTP/1.1\r\nHost: " + f.srv.Addr().String() + "\r\n\r\n")); err != nil {
			t.Fatal(err)
		}
	}
	answer := func(r *bufio.Reader, c *tls.Conn, wait time.Duration) (int, error) {
		_ = c.SetReadDeadline(time.Now().Add(wait))
		resp, err := http.ReadResponse(r, nil)
		if err != nil {
			return 0, err
		}
		defer resp.Body.Close()
		_, _ = io.Copy(io.Discard, resp.Body)
		return resp.StatusCode, nil
	}
	timedOut := func(err error) bool {
		var ne net.Error
		return errors.As(err, &ne) && ne.Timeout()
	}

	old, err := dialTLS(2 * time.Second)
	if err != nil {
		t.Fatalf("alive: %v", err)
	}
	defer old.Close()
	oldR := bufio.NewReader(old)
	request(old)
	if code, err := answer(oldR, old, 2*time.Second); err != nil || code != 200 {
		t.Fatalf("alive: %d %v", code, err)
	}

	f.srv.SetDead(true)
	if !f.srv.Dead() {
		t.Fatal("Dead() is false after SetDead(true)")
	}
	if _, err := dialTLS(300 * time.Millisecond); !timedOut(err) {
		t.Errorf("dead: a new connection's TLS handshake: %v, want a timeout", err)
	}
	request(old)
	if code, err := answer(oldR, old, 300*time.Millisecond); !timedOut(err) {
		t.Errorf("dead: a request on an open connection got %d %v, want no answer", code, err)
	}

	f.srv.SetDead(false)
	c, err := dialTLS(2 * time.Second)
	if err != nil {
		t.Fatalf("alive again: %v", err)
	}
	c.Close()
	if code, err := answer(oldR, old, 2*time.Second); err != nil || code != 200 {
		t.Errorf("alive again: the held request got %d %v, want 200", code, err)
	}
	if r := f.c.do(t, "GET", "/redfish/v1", nil); r.status != 200 {
		t.Errorf("alive again: %d", r.status)
	}
}

// TestCloseWhileDead: connections held by a dead BMC do not keep Close
// waiting.
func TestCloseWhileDead(t *testing.T) {
	before := runtime.NumGoroutine()
	f := start(t, "dell", func(c *Config) { c.Dead = true })
	var conns []net.Conn
	for range 3 {
		c, err := net.DialTimeout("tcp", f.srv.Addr().String(), 2*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		_, _ = c.Write([]byte("\x16\x03\x01\x00\x05hello")) // the start of a ClientHello
	}
	time.Sleep(50 * time.Millisecond) // let the server accept them
	done := make(chan error, 1)
	go func() { done <- f.srv.Close() }()
	select {
	case err := <-done:
		if err != nil && !strings.Contains(err.Error(), "closed") {
			t.Errorf("close: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close still waits 5 s later")
	}
	for _, c := range conns {
		c.Close()
	}
	for end := time.Now().Add(3 * time.Second); runtime.NumGoroutine() > before+2 && time.Now().Before(end); {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before+2 {
		t.Errorf("%d goroutines after Close, %d before", n, before)
	}
}
