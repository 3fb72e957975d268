package redfishsim

import (
	"bytes"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// maxBody bounds request bodies; a login or a Reset is a few dozen bytes.
const maxBody = 64 << 10

// reply is what a handler produces before faults and logging.
type reply struct {
	status int
	body   []byte
	header http.Header
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := cleanPath(r.URL.Path)
	body, _ := io.ReadAll(io.LimitReader(r.Body, maxBody))

	s.mu.Lock()
	f := s.faults
	s.mu.Unlock()
	hit := f.Only == "" || strings.HasPrefix(p, f.Only)

	if !s.sleep(r.Context(), s.cfg.Delay) {
		return
	}
	if hit && !s.sleep(r.Context(), f.Delay) {
		return
	}

	auth := s.authenticate(r)
	if hit && f.ResetConnections {
		s.record(Request{Method: r.Method, Path: r.URL.RequestURI(), Auth: auth})
		s.logf("%s %s reset", r.Method, r.URL.RequestURI())
		resetConn(w)
		return
	}
	if hit && f.RedirectHost != "" {
		s.record(Request{Method: r.Method, Path: r.URL.RequestURI(), Auth: auth, Status: http.StatusTemporaryRedirect})
		s.logf("%s %s 307", r.Method, r.URL.RequestURI())
		w.Header().Set("Location", "https://"+f.RedirectHost+r.URL.RequestURI())
		w.WriteHeader(http.StatusTemporaryRedirect)
		return
	}
	rep := s.route(r, p, body, auth)

	logged := string(body)
	if r.Method == http.MethodPost && p == s.tree.sessions {
		logged = redactPassword(body)
	}
	s.record(Request{Method: r.Method, Path: r.URL.RequestURI(), Body: logged, Auth: auth, Status: rep.status})
	s.logf("%s %s %d", r.Method, r.URL.RequestURI(), rep.status)

	if hit && f.AbsoluteHost != "" {
		rep.body = absolutize(rep.body, f.AbsoluteHost)
		if loc := rep.header.Get("Location"); loc != "" {
			if i := strings.Index(loc, "/redfish/"); i >= 0 {
				rep.header.Set("Location", "https://"+f.AbsoluteHost+loc[i:])
			}
		}
	}
	for k, vs := range rep.header {
		w.Header()[k] = vs
	}
	if len(rep.body) > 0 {
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.Header().Set("OData-Version", "4.0")
	}
	switch {
	case hit && f.MalformedJSON && rep.status < 300:
		bad := []byte(`{"@odata.id": "` + p + `", "Name": "broken" "Members": [}`)
		w.Header().Set("Content-Length", strconv.Itoa(len(bad)))
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(bad)
	case hit && f.TruncateBody && len(rep.body) > 1:
		w.Header().Set("Content-Length", strconv.Itoa(len(rep.body)))
		w.WriteHeader(rep.status)
		_, _ = w.Write(rep.body[:len(rep.body)/2])
		if fl, ok := w.(http.Flusher); ok {
			fl.Flush()
		}
		panic(http.ErrAbortHandler) // closes the connection mid-body
	default:
		w.Header().Set("Content-Length", strconv.Itoa(len(rep.body)))
		w.WriteHeader(rep.status)
		_, _ = w.Write(rep.body)
	}
}

func (s *Server) record(req Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.requests) >= maxRequests {
		s.requests = append(s.requests[:0], s.requests[len(s.requests)-maxRequests/2:]...)
	}
	s.requests = append(s.requests, req)
}

// resetConn closes the client's connection with a TCP reset.
func resetConn(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic(http.ErrAbortHandler)
	}
	c, _, err := hj.Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	var nc net.Conn = c
	for range 3 { // TLS, then the dead switch, then TCP
		tc, ok := nc.(interface{ NetConn() net.Conn })
		if !ok {
			break
		}
		nc = tc.NetConn()
	}
	if tcp, ok := nc.(*net.TCPConn); ok {
		_ = tcp.SetLinger(0)
	}
	c.Close()
}

// authenticate returns "session" or "basic" for valid credentials, ""
// otherwise.
func (s *Server) authenticate(r *http.Request) string {
	if tok := r.Header.Get("X-Auth-Token"); tok != "" {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.expireLocked()
		for _, se := range s.sessions {
			if subtle.ConstantTimeCompare([]byte(se.token), []byte(tok)) == 1 {
				se.lastUsed = time.Now()
				return "session"
			}
		}
		return ""
	}
	if u, p, ok := r.BasicAuth(); ok && s.credentialsOK(u, p) {
		return "basic"
	}
	return ""
}

func (s *Server) credentialsOK(user, pass string) bool {
	u := subtle.ConstantTimeCompare([]byte(user), []byte(s.cfg.Username))
	p := subtle.ConstantTimeCompare([]byte(pass), []byte(s.cfg.Password))
	return u&p == 1
}

// expireLocked drops sessions idle longer than the tree's SessionTimeout.
func (s *Server) expireLocked() {
	now := time.Now()
	for id, se := range s.sessions {
		if now.Sub(se.lastUsed) > s.tree.sessionTimeout {
			delete(s.sessions, id)
		}
	}
}

func (s *Server) route(r *http.Request, p string, body []byte, auth string) reply {
	t := s.tree
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		if p == "/redfish" {
			if b, ok := t.lookup(p); ok {
				return ok200(b)
			}
			return ok200([]byte("{\n    \"v1\": \"/redfish/v1/\"\n}"))
		}
		if p == "/redfish/v1" {
			return s.get(p)
		}
	case http.MethodPost:
		if p == t.sessions {
			s.mu.Lock()
			noSessions := s.faults.NoSessions
			s.mu.Unlock()
			if noSessions {
				return redfishError(http.StatusMethodNotAllowed, "Base.1.8.OperationNotAllowed",
					"This service offers no sessions; use Basic authentication.")
			}
			return s.login(r, body)
		}
	}
	if auth == "" {
		rep := redfishError(http.StatusUnauthorized, "Base.1.8.NoValidSession",
			"There is no valid session established with the implementation.")
		rep.header.Set("WWW-Authenticate", `Basic realm="Redfish"`)
		return rep
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		return s.get(p)
	case http.MethodPost:
		if si := t.resetTargets[t.canonical(p)]; si != nil {
			return s.reset(si, body)
		}
		if li := t.clearTargets[t.canonical(p)]; li != nil {
			return s.clearLog(li)
		}
		if _, ok := t.lookup(p); ok || strings.Contains(p, "/Actions/") {
			return redfishError(http.StatusMethodNotAllowed, "Base.1.8.ActionNotSupported",
				"The action is not supported by the simulator.")
		}
	case http.MethodDelete:
		if strings.HasPrefix(p, t.sessions+"/") {
			return s.logout(strings.TrimPrefix(p, t.sessions+"/"))
		}
		return redfishError(http.StatusMethodNotAllowed, "Base.1.8.OperationNotAllowed",
			"The resource cannot be deleted.")
	default:
		return redfishError(http.StatusMethodNotAllowed, "Base.1.8.OperationNotAllowed",
			"The simulator serves a read-only tree apart from sessions and actions.")
	}
	return notFound(p)
}

func ok200(b []byte) reply { return reply{status: http.StatusOK, body: b, header: http.Header{}} }

func notFound(p string) reply {
	return redfishError(http.StatusNotFound, "Base.1.8.ResourceMissingAtURI",
		fmt.Sprintf("The resource at the URI %s was not found.", p))
}

// redfishError builds the standard Redfish error body.
func redfishError(status int, id, msg string) reply {
	b, _ := json.MarshalIndent(map[string]any{"error": map[string]any{
		"code":    id,
		"message": msg,
		"@Message.ExtendedInfo": []map[string]any{{
			"@odata.type": "#Message.v1_1_1.Message",
			"MessageId":   id,
			"Message":     msg,
			"Severity":    "Critical",
			"Resolution":  "None.",
		}},
	}}, "", "    ")
	return reply{status: status, body: b, header: http.Header{}}
}

// success answers a successful action the vendor's way.
func (s *Server) success() reply {
	if s.tree.vendor.iloSuccess {
		b := []byte(`{
    "error": {
        "@Message.ExtendedInfo": [
            {
                "MessageId": "Base.1.4.Success"
            }
        ],
        "code": "iLO.0.10.ExtendedInfo",
        "message": "See @Message.ExtendedInfo for more information."
    }
}`)
		return ok200(b)
	}
	return reply{status: http.StatusNoContent, header: http.Header{}}
}

// get answers a GET: the captured resource with the live parts overlaid.
func (s *Server) get(p string) reply {
	t := s.tree
	cp := t.canonical(p)

	s.mu.Lock()
	hideLegacy, noSessions := s.faults.HideLegacy, s.faults.NoSessions
	s.mu.Unlock()
	if noSessions && cp == "/redfish/v1" {
		return s.rootWithoutSessions()
	}
	if hideLegacy && t.legacy[cp] {
		return notFound(p)
	}

	switch {
	case cp == t.sessions:
		return s.sessionCollection()
	case strings.HasPrefix(cp, t.sessions+"/"):
		return s.sessionDoc(strings.TrimPrefix(cp, t.sessions+"/"))
	case t.systems[cp] != nil:
		return s.systemDoc(cp)
	case t.entryColls[cp] != nil:
		return s.entriesDoc(t.entryColls[cp])
	}
	if li, id, ok := s.entryOf(cp); ok {
		return s.entryDoc(li, cp, id)
	}
	b, ok := t.lookup(cp)
	if !ok {
		return notFound(p)
	}
	slot, thermal := t.thermal[cp]
	sensor := t.sensorDocs[cp]
	if t.chassis[cp] || thermal || sensor != "" {
		if o, err := parseObject(b); err == nil {
			switch {
			case t.chassis[cp]:
				o = s.withRollup(o)
				if hideLegacy {
					o.del("Thermal")
					o.del("Power")
				}
			case thermal:
				o = s.thermalDoc(o, slot)
			default:
				o = s.sensorDoc(o, sensor)
			}
			b = o.pretty()
		}
	}
	rep := ok200(b)
	if etag := etagOf(b); etag != "" {
		rep.header.Set("ETag", etag)
	}
	return rep
}

// etagOf returns a resource's @odata.etag, sent as the ETag header the way
// iLO, XCC and Supermicro do (gofish echoes it back as If-Match).
func etagOf(b []byte) string {
	var e struct {
		ETag string `json:"@odata.etag"`
	}
	_ = json.Unmarshal(b, &e)
	return e.ETag
}

// rootWithoutSessions is the service root minus its session service.
func (s *Server) rootWithoutSessions() reply {
	o, ok := s.tree.object("/redfish/v1")
	if !ok {
		return notFound("/redfish/v1")
	}
	o = o.clone()
	o.del("SessionService")
	if links, err := parseObject(o.get("Links")); err == nil {
		links = links.clone()
		links.del("Sessions")
		o.set("Links", links)
	}
	return ok200(o.pretty())
}

func (s *Server) systemDoc(p string) reply {
	o, ok := s.tree.object(p)
	if !ok {
		return notFound(p)
	}
	o = o.clone()
	m := s.cfg.Machine
	if m.PowerOn() {
		o.set("PowerState", "On")
	} else {
		o.set("PowerState", "Off")
	}
	if m.ID.UUID != "" {
		o.set("UUID", m.ID.UUID)
	}
	if m.ID.Serial != "" {
		o.set("SerialNumber", m.ID.Serial)
	}
	if s.cfg.IPMIPort != 0 {
		o = withIPMIPort(o, s.cfg.IPMIPort)
	}
	o = s.withRollup(o)
	rep := ok200(o.pretty())
	if etag := o.getString("@odata.etag"); etag != "" {
		rep.header.Set("ETag", etag)
	}
	return rep
}

// withIPMIPort rewrites SerialConsole.IPMI.Port where the tree has one.
func withIPMIPort(o object, port uint16) object {
	sc, err := parseObject(o.get("SerialConsole"))
	if err != nil {
		return o
	}
	ipmi, err := parseObject(sc.get("IPMI"))
	if err != nil || ipmi.get("Port") == nil {
		return o
	}
	ipmi = ipmi.clone()
	ipmi.set("Port", int(port))
	sc = sc.clone()
	sc.set("IPMI", ipmi)
	o.set("SerialConsole", sc)
	return o
}

// redactPassword keeps a login body readable in the request log without
// its password.
func redactPassword(body []byte) string {
	var m map[string]any
	if json.Unmarshal(body, &m) != nil {
		return "(unparsed login body)"
	}
	if _, ok := m["Password"]; ok {
		m["Password"] = "[redacted]"
	}
	b, _ := json.Marshal(m)
	return string(b)
}

// absolutize rewrites every link in a JSON body into an absolute URL on
// host, for the fault that tests a client's refusal to follow names.
func absolutize(body []byte, host string) []byte {
	var v any
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if dec.Decode(&v) != nil {
		return body
	}
	var walk func(any) any
	walk = func(v any) any {
		switch x := v.(type) {
		case map[string]any:
			for k, e := range x {
				if s, ok := e.(string); ok && strings.HasPrefix(s, "/") && isLinkKey(k) {
					x[k] = "https://" + host + s
					continue
				}
				x[k] = walk(e)
			}
		case []any:
			for i := range x {
				x[i] = walk(x[i])
			}
		}
		return v
	}
	out, err := json.MarshalIndent(walk(v), "", "    ")
	if err != nil {
		return body
	}
	return out
}

func isLinkKey(k string) bool {
	switch k {
	case "@odata.id", "target", "@Redfish.ActionInfo", "@odata.nextLink", "Members@odata.nextLink":
		return true
	}
	return false
}

var errNotJSON = errors.New("not a JSON object")

// decodeBody parses an action's JSON body.
func decodeBody(body []byte, v any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return errNotJSON
	}
	return json.Unmarshal(body, v)
}
