package redfishsim

import (
	"encoding/json"
	"path"
	"strconv"
	"time"
)

// liveEntry is one entry as the server shows it now.
type liveEntry struct {
	path string
	doc  []byte
}

// entryOf reports whether p names a member of a log service's Entries.
func (s *Server) entryOf(p string) (*logInfo, string, bool) {
	dir, id := path.Split(p)
	li := s.tree.entryColls[cleanPath(dir)]
	return li, id, li != nil && id != ""
}

// liveEntries lists a log service's entries in the vendor's order: the
// captured ones unless the log was cleared, and for the SEL service the
// machine's records after them (before them where the vendor lists the
// newest first).
func (s *Server) liveEntries(li *logInfo) []liveEntry {
	m := s.cfg.Machine
	s.mu.Lock()
	hidden := s.cleared[li.path]
	s.mu.Unlock()
	isSEL := li == s.tree.sel
	if isSEL && m.SELClears() > s.selClears {
		hidden = true // cleared here or over IPMI: it is one log
	}
	var out []liveEntry
	if !hidden {
		for _, c := range li.captured {
			out = append(out, liveEntry{path: c.path, doc: c.doc})
		}
	}
	if !isSEL {
		return out
	}
	var mine []liveEntry
	var last time.Time
	for _, r := range m.SEL() {
		when := r.Time
		if when.IsZero() {
			// Non-timestamped OEM records (Linux's panic string) carry no
			// time; the BMC stamps them when they arrive, right after the
			// event they follow.
			when = last
			if when.IsZero() {
				when = time.Now()
			}
		}
		last = when
		id := strconv.Itoa(li.maxID + int(r.ID))
		uri := li.entries + "/" + id
		mine = append(mine, liveEntry{path: uri, doc: s.tree.vendor.entry(li.template, uri, id, r, when).pretty()})
	}
	if li.newestFirst {
		for i, j := 0, len(mine)-1; i < j; i, j = i+1, j-1 {
			mine[i], mine[j] = mine[j], mine[i]
		}
		return append(mine, out...)
	}
	return append(out, mine...)
}

// entriesDoc renders a log's Entries collection with every member inline,
// as all five vendors do.
func (s *Server) entriesDoc(li *logInfo) reply {
	entries := s.liveEntries(li)
	members := make([]json.RawMessage, 0, len(entries))
	for _, e := range entries {
		members = append(members, json.RawMessage(e.doc))
	}
	o := li.collection.clone()
	o.set("Members", members)
	o.set("Members@odata.count", len(members))
	return ok200(o.pretty())
}

func (s *Server) entryDoc(li *logInfo, p, id string) reply {
	for _, e := range s.liveEntries(li) {
		if e.path == p {
			return ok200(e.doc)
		}
	}
	return notFound(p)
}

// clearLog handles a ClearLog action: on the SEL service it clears the
// machine's SEL (which IPMI sees too); on any other log it hides that log's
// captured entries.
func (s *Server) clearLog(li *logInfo) reply {
	if li == s.tree.sel {
		s.cfg.Machine.ClearSEL()
	}
	s.mu.Lock()
	if li != s.tree.sel {
		s.cleared[li.path] = true
	}
	s.clearedLogs = append(s.clearedLogs, li.path)
	s.mu.Unlock()
	return s.success()
}
