// Package redfish is rmm's Redfish provider, on gofish v0.20.0.
//
// It exists instead of bmclib's own Redfish provider because that one maps
// "cycle" to ForceRestart and "reset" to PowerCycle (the opposite of IPMI's
// meaning), fails a cycle on a host that is off, GETs the session before
// every call, ignores @Redfish.ActionInfo, and keeps its gofish client
// private, so identity, SEL and health would need a second session.
//
// Everything goes through one guarded http.Client (transport.go): it dials
// the target's IP and nothing else, pins the certificate, refuses redirects
// and links naming another host, and applies each call's context. gofish
// supplies the service-root, system and manager models and the Reset call;
// log services, ActionInfo and sensors are read as raw JSON because gofish
// v0.20 gets them wrong (the comment at each place says how).
package redfish

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/rmm-project/rmm/bmc"
	"github.com/stmcginnis/gofish"
	"github.com/stmcginnis/gofish/common"
)

// Name is the provider's name in bmclib's registry.
const Name = "rmm-redfish"

// closeTimeout bounds the logout in Close, which runs even when the
// caller's context is already cancelled: a leaked session holds one of the
// BMC's few session slots until it times out (30 minutes on iLO).
const closeTimeout = 2 * time.Second

// Provider speaks Redfish to one BMC. Create it with New; the engine
// serialises calls on it, as bmc.Provider requires.
type Provider struct {
	t    bmc.Target
	g    *guard
	hc   *http.Client
	base string // "https://ip:port"

	api      *gofish.APIClient
	bgCancel context.CancelFunc
	basic    bool
	session  string // URI to DELETE on Close
	token    string
	root     serviceRoot

	// Discovered on first use, for the life of the session.
	sys *systemInfo
	sel *logService
}

var (
	_ bmc.ProviderFunc      = New
	_ bmc.Provider          = (*Provider)(nil)
	_ bmc.IdentityReader    = (*Provider)(nil)
	_ bmc.SELReader         = (*Provider)(nil)
	_ bmc.SELClearer        = (*Provider)(nil)
	_ bmc.HealthReader      = (*Provider)(nil)
	_ bmc.ConsoleInfoReader = (*Provider)(nil)
)

// New returns a Redfish provider for t. Nothing is sent until Open.
func New(t bmc.Target) (bmc.Provider, error) {
	if !t.Addr.IsValid() {
		return nil, fmt.Errorf("%w: the target has no BMC IP address", bmc.ErrHostname)
	}
	if t.Username == "" {
		return nil, fmt.Errorf("%w: Redfish needs a user name", bmc.ErrAuth)
	}
	g := newGuard(t)
	return &Provider{t: t, g: g, hc: g.client(), base: "https://" + g.host}, nil
}

// Name is the registry name.
func (p *Provider) Name() string { return Name }

// serviceRoot is the part of /redfish/v1 the provider reads before login.
type serviceRoot struct {
	Vendor   string
	Product  string
	Systems  link
	Managers link
	Chassis  link
	Links    struct{ Sessions link }
}

type link struct {
	ID string `json:"@odata.id"`
}

// Open logs in: a session through the service root's Links.Sessions, or
// Basic authentication when the BMC offers no session service. On any
// error the session is already gone when Open returns.
func (p *Provider) Open(ctx context.Context) (err error) {
	if p.api != nil {
		return nil
	}
	p.g.use(ctx)
	defer func() {
		if err != nil { // no kept-alive socket outlives a failed Open
			p.g.next.CloseIdleConnections()
		}
	}()
	var root serviceRoot
	if err := p.getJSON("/redfish/v1/", &root, false); err != nil {
		return fmt.Errorf("service root: %w", err)
	}
	p.root = root
	bg, cancel := context.WithCancel(context.Background())
	cfg := gofish.ClientConfig{Endpoint: p.base, HTTPClient: p.hc}
	if root.Links.Sessions.ID != "" {
		if err := p.login(root.Links.Sessions.ID); err != nil {
			cancel()
			return err
		}
		cfg.Session = &gofish.Session{ID: p.session, Token: p.token}
	} else {
		p.basic = true
		cfg.Username = p.t.Username
		cfg.Password = p.t.Password.Reveal()
		cfg.BasicAuth = true
	}
	api, err := gofish.ConnectContext(bg, cfg)
	if err == nil && p.basic {
		// The service root is public: only an authenticated read proves
		// Basic credentials.
		err = p.getJSON(orDefault(root.Systems.ID, "/redfish/v1/Systems"), &struct{}{}, true)
	}
	if err != nil {
		cancel()
		_ = p.logout()
		return fmt.Errorf("connect: %w", classify(err))
	}
	p.api, p.bgCancel = api, cancel
	return nil
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// login creates a session. Its Location must be on the BMC itself: a
// Location naming another host is refused (the session is still deleted,
// at the BMC's IP, so nothing leaks).
func (p *Provider) login(sessions string) error {
	body := map[string]string{"UserName": p.t.Username, "Password": p.t.Password.Reveal()}
	status, hdr, data, err := p.request(http.MethodPost, sessions, body, false)
	if err != nil {
		return fmt.Errorf("login: %w", classify(err))
	}
	if status < 200 || status > 299 {
		return fmt.Errorf("login: %w", statusError(status, data))
	}
	p.token = hdr.Get("X-Auth-Token")
	loc := hdr.Get("Location")
	if loc == "" { // the session body names itself too
		var s link
		_ = json.Unmarshal(data, &s)
		loc = s.ID
	}
	rel, isAbs, lerr := p.g.relative(loc)
	if isAbs && lerr != nil {
		// Clean up at the address we trust, then refuse.
		if u, err := url.Parse(loc); err == nil && strings.HasPrefix(u.Path, "/redfish/") {
			p.session = u.Path
			_ = p.logout()
		}
		return fmt.Errorf("login: session Location: %w", lerr)
	}
	p.session = rel
	switch {
	case p.token == "":
		_ = p.logout() // with Basic auth, the only way left to delete it
		return fmt.Errorf("login: %w: the BMC created a session but sent no X-Auth-Token", bmc.ErrProtocol)
	case !strings.HasPrefix(p.session, "/"):
		p.session = ""
		return fmt.Errorf("login: %w: the BMC sent no usable session Location (%q)", bmc.ErrProtocol, loc)
	}
	return nil
}

// Close logs out with its own short deadline, so Ctrl-C still frees the
// BMC's session slot. Safe to call more than once.
func (p *Provider) Close(ctx context.Context) error {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), closeTimeout)
	defer cancel()
	p.g.use(cctx)
	err := p.logout()
	if p.bgCancel != nil {
		p.bgCancel()
		p.bgCancel = nil
	}
	p.g.next.CloseIdleConnections()
	p.api, p.sys, p.sel, p.basic = nil, nil, nil, false
	return err
}

// logout deletes the session, if any. A session the BMC no longer knows
// (404, or 401 for an expired token) is already gone.
func (p *Provider) logout() error {
	if p.session == "" {
		p.token = ""
		return nil
	}
	uri := p.session
	status, _, data, err := p.request(http.MethodDelete, uri, nil, true)
	p.session, p.token = "", ""
	if err != nil {
		return fmt.Errorf("logout: %w", classify(err))
	}
	if status >= 300 && status != http.StatusNotFound && status != http.StatusUnauthorized {
		return fmt.Errorf("logout: %w", statusError(status, data))
	}
	return nil
}

// request sends one request through the guard. body is JSON-encoded;
// auth adds the session token (or Basic credentials).
func (p *Provider) request(method, uri string, body any, auth bool) (int, http.Header, []byte, error) {
	if !strings.HasPrefix(uri, "/") {
		return 0, nil, nil, fmt.Errorf("%w: %q is not a path on the BMC", bmc.ErrProtocol, uri)
	}
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, nil, nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(p.g.ctx(), method, p.base+uri, rd)
	if err != nil {
		return 0, nil, nil, fmt.Errorf("%w: %v", bmc.ErrProtocol, err)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("OData-Version", "4.0")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if auth {
		switch {
		case p.token != "":
			req.Header.Set("X-Auth-Token", p.token)
		case p.basic || p.session != "":
			req.SetBasicAuth(p.t.Username, p.t.Password.Reveal())
		}
	}
	resp, err := p.hc.Do(req)
	if err != nil {
		return 0, nil, nil, fmt.Errorf("%s %s: %w", method, uri, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, nil, nil, fmt.Errorf("%w: %s %s: %v", bmc.ErrProtocol, method, uri, err)
	}
	return resp.StatusCode, resp.Header, data, nil
}

// getJSON GETs uri and decodes it into v.
func (p *Provider) getJSON(uri string, v any, auth bool) error {
	status, _, data, err := p.request(http.MethodGet, uri, nil, auth)
	if err != nil {
		return classify(err)
	}
	if status != http.StatusOK {
		return fmt.Errorf("GET %s: %w", uri, statusError(status, data))
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("%w: GET %s: %v", bmc.ErrProtocol, uri, err)
	}
	return nil
}

// post sends an action.
func (p *Provider) post(uri string, body any) error {
	status, _, data, err := p.request(http.MethodPost, uri, body, true)
	if err != nil {
		return classify(err)
	}
	if status < 200 || status > 299 {
		return fmt.Errorf("POST %s: %w", uri, statusError(status, data))
	}
	return nil
}

// start prepares a call: the session must be open, and every request of
// the call runs under ctx.
func (p *Provider) start(ctx context.Context) error {
	if p.api == nil {
		return fmt.Errorf("%w: the Redfish session is not open", bmc.ErrProtocol)
	}
	p.g.use(ctx)
	return ctx.Err()
}

// statusError turns an HTTP error answer into an error wrapping the right
// sentinel, with the Redfish message when there is one.
func statusError(status int, body []byte) error {
	msg := redfishMessage(body)
	if msg == "" {
		msg = http.StatusText(status)
	}
	var sentinel error
	switch status {
	case http.StatusUnauthorized, http.StatusForbidden:
		sentinel = bmc.ErrAuth
	case http.StatusNotFound, http.StatusMethodNotAllowed, http.StatusNotImplemented:
		sentinel = bmc.ErrUnsupported
	case http.StatusServiceUnavailable, http.StatusTooManyRequests:
		sentinel = bmc.ErrBusy
	default:
		sentinel = bmc.ErrProtocol
	}
	return fmt.Errorf("%w: HTTP %d: %s", sentinel, status, msg)
}

// redfishMessage extracts the message of a Redfish error body.
func redfishMessage(body []byte) string {
	var e struct {
		Error struct {
			Code     string `json:"code"`
			Message  string `json:"message"`
			Extended []struct {
				MessageID string `json:"MessageId"`
				Message   string
			} `json:"@Message.ExtendedInfo"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &e) != nil {
		return ""
	}
	for _, x := range e.Error.Extended {
		if x.Message != "" {
			return x.Message
		}
	}
	if e.Error.Message != "" {
		return e.Error.Message
	}
	return e.Error.Code
}

// classify maps whatever gofish or net/http returned onto the bmc
// sentinels. Errors the guard produced already wrap one.
func classify(err error) error {
	if err == nil {
		return nil
	}
	for _, s := range []error{bmc.ErrHostname, bmc.ErrTLSPin, bmc.ErrAuth, bmc.ErrTimeout,
		bmc.ErrUnreachable, bmc.ErrUnsupported, bmc.ErrProtocol, bmc.ErrBusy} {
		if errors.Is(err, s) {
			return err
		}
	}
	if errors.Is(err, context.Canceled) {
		return err
	}
	var ge *common.Error
	if errors.As(err, &ge) {
		return statusError(ge.HTTPReturnedStatusCode, rawError(ge))
	}
	// gofish's CollectionError keeps member errors in a map and does not
	// unwrap: classify one of them.
	var ce *common.CollectionError
	if errors.As(err, &ce) {
		for link, e := range ce.Failures {
			return fmt.Errorf("%s: %w", link, classify(e))
		}
	}
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	if errors.As(err, &se) || errors.As(err, &te) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%w: %w", bmc.ErrProtocol, err)
	}
	var ue *url.Error
	if errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ue) {
		return bmc.ClassifyNetErr(err)
	}
	return fmt.Errorf("%w: %w", bmc.ErrProtocol, err)
}

// rawError re-encodes a gofish error so statusError can read its message.
func rawError(ge *common.Error) []byte {
	b, _ := json.Marshal(map[string]any{"error": map[string]any{
		"code": ge.Code, "message": ge.Message, "@Message.ExtendedInfo": ge.ExtendedInfos,
	}})
	return b
}
