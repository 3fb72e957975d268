package redfish

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rmm-project/rmm/bmc"
)

// maxResponse bounds a response body. The largest resource in the captured
// trees is a Supermicro log collection of about 440 KB.
const maxResponse = 32 << 20

// requestCap bounds one HTTP exchange when the caller's context has no
// deadline, so a hung BMC cannot hold a goroutine forever.
const requestCap = 2 * time.Minute

// guard is the only road from rmm to a BMC's HTTPS port. It dials the
// target's IP and nothing else, pins the certificate, refuses redirects and
// links that name another host, checks that bodies are JSON, and applies
// the current call's context to every request gofish makes.
//
// gofish v0.20 takes one context at Connect time and keeps it for the
// client's life; guard swaps in the context of the provider call in
// progress (calls on a provider are serialised by the engine), so every
// call honours its own deadline.
type guard struct {
	t    bmc.Target
	host string // "ip:port" as it appears in a URL
	next *http.Transport
	cur  atomic.Pointer[context.Context]

	mu       sync.Mutex
	accepted string // fingerprint accepted during this session (TOFU)
}

func newGuard(t bmc.Target) *guard {
	ap := t.RedfishAddr()
	g := &guard{t: t, host: ap.String()}
	g.next = &http.Transport{
		Proxy: nil, // never a proxy: a proxy would resolve names for us
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			if addr != g.host {
				return nil, fmt.Errorf("%w: refusing to connect to %q, the BMC is %s", bmc.ErrHostname, addr, g.host)
			}
			return bmc.DialIP(ctx, network, addr)
		},
		TLSClientConfig: &tls.Config{
			// Verification is by pin, below: BMC certificates are
			// self-signed, so chain building would always fail.
			InsecureSkipVerify: true, //nolint:gosec // pinned in VerifyConnection
			VerifyConnection:   g.verify,
			MinVersion:         tls.VersionTLS12,
		},
		ForceAttemptHTTP2:     false,
		TLSHandshakeTimeout:   30 * time.Second,
		MaxIdleConnsPerHost:   4,
		IdleConnTimeout:       30 * time.Second,
		ResponseHeaderTimeout: requestCap,
	}
	return g
}

// client is the http.Client gofish and the provider use.
func (g *guard) client() *http.Client {
	return &http.Client{
		Transport:     g,
		CheckRedirect: g.checkRedirect,
	}
}

// use makes ctx the context of every request until the next use.
func (g *guard) use(ctx context.Context) { g.cur.Store(&ctx) }

// ctx is the current call's context.
func (g *guard) ctx() context.Context {
	if p := g.cur.Load(); p != nil {
		return *p
	}
	return context.Background()
}

func (g *guard) checkRedirect(req *http.Request, via []*http.Request) error {
	if req.URL.Scheme != "https" || req.URL.Host != g.host {
		return fmt.Errorf("%w: the BMC redirected to %s://%s, not to its own address %s",
			bmc.ErrHostname, req.URL.Scheme, req.URL.Host, g.host)
	}
	if len(via) >= 3 {
		return fmt.Errorf("%w: more than 3 redirects", bmc.ErrProtocol)
	}
	return nil
}

// RoundTrip sends req to the BMC and vets the answer.
func (g *guard) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Scheme != "https" || req.URL.Host != g.host {
		return nil, fmt.Errorf("%w: refusing a request to %s://%s, the BMC is %s",
			bmc.ErrHostname, req.URL.Scheme, req.URL.Host, g.host)
	}
	if rest, ok := strings.CutPrefix(req.URL.Path, refusedPrefix); ok {
		return nil, fmt.Errorf("%w: the BMC links to https:%s, which is not its own address %s; not following it",
			bmc.ErrHostname, rest, g.host)
	}
	// The call's context, bounded by requestCap, and still cancelled if
	// gofish or net/http cancel their own.
	ctx, cancel := context.WithTimeout(g.ctx(), requestCap)
	defer cancel()
	stop := context.AfterFunc(req.Context(), cancel)
	defer stop()
	r := req.WithContext(ctx)
	// gofish v0.20 sets Close on every request when it did not build the
	// transport itself: a new TCP and TLS handshake per GET. Keep-alive is
	// safe here, the pin is checked on every new connection.
	r.Close = false
	resp, err := g.next.RoundTrip(r)
	if err != nil {
		return nil, err
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse+1))
	resp.Body.Close()
	if err != nil {
		return nil, fmt.Errorf("%w: %s %s: reading the response: %w", bmc.ErrProtocol, req.Method, req.URL.Path, err)
	}
	if len(body) > maxResponse {
		return nil, fmt.Errorf("%w: %s %s: response larger than %d bytes", bmc.ErrProtocol, req.Method, req.URL.Path, maxResponse)
	}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 && len(bytes.TrimSpace(body)) > 0 {
		body, err = g.vet(body)
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", req.Method, req.URL.Path, err)
		}
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	resp.ContentLength = int64(len(body))
	resp.Header.Del("Content-Length")
	return resp, nil
}

// vet checks that a body is JSON and that none of its links leaves the
// BMC. A link that is an absolute URL naming the BMC's own address is made
// relative (gofish would glue it to the endpoint). A link naming any other
// host is never followed and never resolved: it is rewritten to a path
// under refusedPrefix, which RoundTrip refuses with ErrHostname, so the
// document still reads (DMTF's power supply links a PDU outlet on another
// host) but following that link fails.
func (g *guard) vet(body []byte) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("%w: the BMC sent invalid JSON: %w", bmc.ErrProtocol, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("%w: the BMC sent data after the JSON document", bmc.ErrProtocol)
	}
	changed := false
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, e := range x {
				if s, ok := e.(string); ok && isLinkKey(k) {
					if rel, isAbs, err := g.relative(s); isAbs {
						if err != nil {
							rel = refusedPrefix + strings.TrimPrefix(strings.TrimPrefix(s, "https:"), "http:")
						}
						x[k] = rel
						changed = true
					}
					continue
				}
				walk(e)
			}
		case []any:
			for _, e := range x {
				walk(e)
			}
		}
	}
	walk(v)
	if !changed {
		return body, nil
	}
	return json.Marshal(v)
}

// refusedPrefix marks a link to another host inside a vetted body:
// "https://pdu.example.com/redfish/v1/X" becomes
// "/rmm-refused-link//pdu.example.com/redfish/v1/X".
const refusedPrefix = "/rmm-refused-link/"

// isLinkKey names the JSON members that hold URIs a client follows.
func isLinkKey(k string) bool {
	switch k {
	case "@odata.id", "target", "@Redfish.ActionInfo", "@odata.nextLink", "Members@odata.nextLink":
		return true
	}
	return false
}

// relative returns the path of an absolute URL that names the BMC itself;
// isAbs is false for a plain path. Another host is an ErrHostname error.
func (g *guard) relative(link string) (rel string, isAbs bool, err error) {
	i := strings.Index(link, "://")
	if !strings.HasPrefix(link, "//") && (i < 0 || strings.ContainsAny(link[:i], "/?#")) {
		return link, false, nil // a path, even one with "://" further on
	}
	u, perr := url.Parse(link)
	if perr != nil {
		return "", true, fmt.Errorf("%w: unparseable link %q", bmc.ErrProtocol, link)
	}
	host := u.Host
	if u.Port() == "" && u.Scheme == "https" {
		host = net.JoinHostPort(u.Hostname(), "443")
	}
	if host != g.host {
		return "", true, fmt.Errorf("%w: the BMC links to %s, which is not its own address %s",
			bmc.ErrHostname, u.Host, g.host)
	}
	rel = u.EscapedPath()
	if u.RawQuery != "" {
		rel += "?" + u.RawQuery
	}
	if u.Fragment != "" {
		rel += "#" + u.EscapedFragment()
	}
	return rel, true, nil
}

// verify pins the BMC's certificate: an explicit fingerprint, else any
// certificate when Insecure, else the trust store (trust on first use).
func (g *guard) verify(cs tls.ConnectionState) error {
	if len(cs.PeerCertificates) == 0 {
		return fmt.Errorf("%w: the BMC presented no certificate", bmc.ErrTLSPin)
	}
	sum := sha256.Sum256(cs.PeerCertificates[0].Raw)
	got := hex.EncodeToString(sum[:])
	tc := g.t.TLS
	ap := g.t.RedfishAddr()
	switch {
	case tc.Fingerprint != "":
		want := normalizeFingerprint(tc.Fingerprint)
		if got != want {
			return &hintError{
				err:  fmt.Errorf("%w: certificate sha256 %s, pinned %s", bmc.ErrTLSPin, got, want),
				hint: "the BMC's certificate is not the pinned one; if it was replaced on purpose, update the host's tls fingerprint in the inventory",
			}
		}
		return nil
	case tc.Insecure:
		// Any certificate, and nothing recorded: an insecure host must not
		// leave a trust-on-first-use entry that would later refuse it.
		return nil
	case tc.Trust != nil:
		g.mu.Lock()
		defer g.mu.Unlock()
		if g.accepted != "" {
			if got != g.accepted {
				return fmt.Errorf("%w: certificate sha256 %s changed during the session (was %s)", bmc.ErrTLSPin, got, g.accepted)
			}
			return nil
		}
		known, ok := tc.Trust.Lookup(g.t.Name, ap)
		if ok {
			known = normalizeFingerprint(known)
			if got != known {
				return fmt.Errorf("%w: certificate sha256 %s, recorded on first use %s", bmc.ErrTLSPin, got, known)
			}
		} else if err := tc.Trust.Remember(g.t.Name, ap, got); err != nil {
			return fmt.Errorf("%w: recording the certificate of %s on first use: %w", bmc.ErrTLSPin, ap, err)
		}
		g.accepted = got
		return nil
	}
	return &hintError{
		err:  fmt.Errorf("%w: no fingerprint pinned and no trust store for %s (certificate sha256 %s)", bmc.ErrTLSPin, ap, got),
		hint: "pin the BMC's certificate (its sha256 fingerprint) in the inventory, or enable trust on first use",
	}
}

// normalizeFingerprint accepts "AB:CD:..." and "abcd..." spellings.
func normalizeFingerprint(s string) string {
	s = strings.ToLower(strings.TrimSpace(s))
	s = strings.TrimPrefix(s, "sha256:")
	return strings.NewReplacer(":", "", " ", "", "-", "").Replace(s)
}

// hintError carries the hint line the CLI prints under an error.
type hintError struct {
	err  error
	hint string
}

func (h *hintError) Error() string { return h.err.Error() }
func (h *hintError) Unwrap() error { return h.err }

// Hint returns the suggested fix.
func (h *hintError) Hint() string { return h.hint }

var errClosed = errors.New("the Redfish session is closed")
