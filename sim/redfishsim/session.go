package redfishsim

import (
	"net/http"
	"sort"
	"time"
)

// maxSessions bounds the session table: a client that leaks sessions hits
// the limit (503, as a BMC with its session slots full answers) instead of
// growing the map without end.
const maxSessions = 256

// login handles POST to the service root's Links.Sessions.
func (s *Server) login(r *http.Request, body []byte) reply {
	var creds struct {
		UserName string
		Password string
	}
	if err := decodeBody(body, &creds); err != nil || creds.UserName == "" {
		return redfishError(http.StatusBadRequest, "Base.1.8.MalformedJSON",
			"The request body must be a JSON object with UserName and Password.")
	}
	if !s.credentialsOK(creds.UserName, creds.Password) {
		return redfishError(http.StatusUnauthorized, "Base.1.8.ResourceAtUriUnauthorized",
			"While accessing the resource at the session service, the service received an authorization error.")
	}
	s.mu.Lock()
	s.expireLocked()
	if len(s.sessions) >= maxSessions {
		s.mu.Unlock()
		return redfishError(http.StatusServiceUnavailable, "Base.1.8.SessionLimitExceeded",
			"The session establishment failed due to the number of simultaneous sessions exceeding the limit of the implementation.")
	}
	s.nSessions++
	se := &session{
		id:       s.tree.vendor.sessionID(s.nSessions, creds.UserName),
		token:    randomHex(16),
		user:     creds.UserName,
		lastUsed: time.Now(),
	}
	s.sessions[se.id] = se
	s.mu.Unlock()

	uri := s.tree.sessions + "/" + se.id
	rep := reply{status: http.StatusCreated, header: http.Header{}, body: s.sessionBody(se)}
	rep.header.Set("X-Auth-Token", se.token)
	if s.tree.vendor.absoluteLocation {
		rep.header.Set("Location", "https://"+s.hostPort()+uri+"/")
	} else {
		rep.header.Set("Location", uri)
	}
	return rep
}

// hostPort is the server's address as it appears in a URL.
func (s *Server) hostPort() string { return s.addr.String() }

// logout handles DELETE of a session.
func (s *Server) logout(id string) reply {
	s.mu.Lock()
	_, ok := s.sessions[id]
	delete(s.sessions, id)
	s.mu.Unlock()
	if !ok {
		return notFound(s.tree.sessions + "/" + id)
	}
	if s.tree.vendor.iloSuccess {
		return s.success()
	}
	return reply{status: http.StatusNoContent, header: http.Header{}}
}

// sessionBody renders a session in the style of the tree's captured one.
func (s *Server) sessionBody(se *session) []byte {
	o := s.tree.sessionTemplate.clone()
	uri := s.tree.sessions + "/" + se.id
	o.set("@odata.id", uri)
	o.set("Id", se.id)
	o.set("UserName", se.user)
	if o.get("Password") != nil {
		o.set("Password", nil)
	}
	if o.get("ClientOriginIPAddress") != nil {
		o.set("ClientOriginIPAddress", "127.0.0.1")
	}
	for _, k := range []string{"Oem", "CreatedTime", "ExpirationTime", "@odata.etag"} {
		o.del(k) // the capture's values describe someone else's session
	}
	return o.pretty()
}

func (s *Server) sessionCollection() reply {
	s.mu.Lock()
	s.expireLocked()
	ids := make([]string, 0, len(s.sessions))
	for id := range s.sessions {
		ids = append(ids, id)
	}
	s.mu.Unlock()
	sort.Strings(ids)
	members := make([]link, 0, len(ids))
	for _, id := range ids {
		members = append(members, link{ID: s.tree.sessions + "/" + id})
	}
	o := s.tree.sessionsDoc.clone()
	o.del("Oem") // iLO's MySession link names a captured session
	o.set("Members", members)
	o.set("Members@odata.count", len(members))
	return ok200(o.pretty())
}

func (s *Server) sessionDoc(id string) reply {
	s.mu.Lock()
	se := s.sessions[id]
	s.mu.Unlock()
	if se == nil {
		return notFound(s.tree.sessions + "/" + id)
	}
	return ok200(s.sessionBody(se))
}
