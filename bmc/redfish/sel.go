package redfish

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/rmm-project/rmm/bmc"
)

// Limits on reading a log: BMCs keep a few thousand entries at most.
const (
	maxEntries = 10000
	maxPages   = 100
)

// logService is a LogService as the SEL search sees it.
type logService struct {
	uri         string
	id          string
	name        string
	entryType   string
	entries     string
	clearTarget string
	underSystem bool
	order       int
}

type logServiceRaw struct {
	ODataID      string `json:"@odata.id"`
	ID           string `json:"Id"`
	Name         string
	LogEntryType string
	Entries      link
	Actions      struct {
		Clear struct {
			Target string `json:"target"`
		} `json:"#LogService.ClearLog"`
	}
}

// selService finds the log that is the System Event Log, or the nearest
// thing the vendor has:
//
//   - a LogService with LogEntryType SEL and Entries (Dell's Sel,
//     Supermicro's Health Event Log) wins, the one with ClearLog first
//     (iDRAC's FaultList is also typed SEL but is a fault summary);
//   - else the hardware event log by its known name: HPE's IML, Lenovo's
//     PlatformLog (XCC's "SEL" service has no Entries);
//   - else a service under the system before one under the manager
//     (DMTF's Log1 before the BMC's own log).
//
// Audit, maintenance, security, lifecycle and diagnostic logs never count,
// whatever their type: Supermicro's manager Log1 is its Maintenance log,
// with the same Id as the real SEL under the system. Services are deduped
// by URI: Lenovo's Manager.LogServices points at the system's collection.
func (p *Provider) selService() (*logService, error) {
	if p.sel != nil {
		return p.sel, nil
	}
	svcs, err := p.logServices()
	if err != nil {
		return nil, err
	}
	var best *logService
	bestScore := 0
	for _, s := range svcs {
		if sc := s.score(); sc > bestScore {
			best, bestScore = s, sc
		}
	}
	if best == nil {
		var names []string
		for _, s := range svcs {
			names = append(names, s.uri)
		}
		return nil, fmt.Errorf("%w: no event log among the BMC's log services (%s)", bmc.ErrUnsupported, strings.Join(names, ", "))
	}
	p.sel = best
	return best, nil
}

// score ranks a log service as the SEL; 0 means never.
func (s *logService) score() int {
	if s.entries == "" {
		return 0
	}
	switch strings.ToLower(s.id) {
	case "iel", "sl", "lclog", "faultlist", "auditlog", "maintenancelog", "diagnosticlog", "salog", "activelog":
		return 0 // iLO event and security logs, iDRAC lifecycle and fault list, XCC's others
	}
	name := strings.ToLower(s.name)
	for _, not := range []string{"audit", "maintenance", "security", "lifecycle", "diagnostic"} {
		if strings.Contains(name, not) {
			return 0
		}
	}
	sc := 1
	if strings.EqualFold(s.entryType, "SEL") {
		sc += 100
	}
	switch strings.ToLower(s.id) {
	case "sel", "iml", "platformlog":
		sc += 50
	}
	if s.clearTarget != "" {
		sc += 10
	}
	if s.underSystem {
		sc += 5
	}
	return sc
}

// logServices lists the system's log services, then its managers',
// deduped.
func (p *Provider) logServices() ([]*logService, error) {
	si, err := p.system()
	if err != nil {
		return nil, err
	}
	type coll struct {
		uri         string
		underSystem bool
	}
	var colls []coll
	var sr systemRaw
	if err := p.getJSON(si.uri, &sr, true); err != nil {
		return nil, err
	}
	if sr.LogServices.ID != "" {
		colls = append(colls, coll{sr.LogServices.ID, true})
	}
	managers := si.managers
	if len(managers) == 0 {
		var c struct{ Members []link }
		if err := p.getJSON(orDefault(p.root.Managers.ID, "/redfish/v1/Managers"), &c, true); err != nil {
			return nil, err
		}
		for _, m := range c.Members {
			managers = append(managers, m.ID)
		}
	}
	for _, m := range managers {
		var mr struct{ LogServices link }
		if err := p.getJSON(m, &mr, true); err != nil {
			return nil, err
		}
		if mr.LogServices.ID != "" {
			colls = append(colls, coll{mr.LogServices.ID, false})
		}
	}
	seenColl := map[string]bool{}
	seen := map[string]bool{}
	var out []*logService
	for _, c := range colls {
		if seenColl[cleanURI(c.uri)] {
			continue
		}
		seenColl[cleanURI(c.uri)] = true
		var members struct{ Members []link }
		if err := p.getJSON(c.uri, &members, true); err != nil {
			return nil, err
		}
		for _, m := range members.Members {
			if m.ID == "" || seen[cleanURI(m.ID)] {
				continue
			}
			seen[cleanURI(m.ID)] = true
			var r logServiceRaw
			if err := p.getJSON(m.ID, &r, true); err != nil {
				return nil, err
			}
			out = append(out, &logService{
				uri: cleanURI(m.ID), id: r.ID, name: r.Name, entryType: r.LogEntryType,
				entries: r.Entries.ID, clearTarget: r.Actions.Clear.Target,
				underSystem: c.underSystem, order: len(out),
			})
		}
	}
	return out, nil
}

// SEL reads the event log, oldest first. Entries come from the Entries
// collection's inline members (all five vendors send them); only members
// sent as bare links are fetched one by one (gofish v0.20 GETs every
// member, which took 18 s for one iDRAC Sel).
func (p *Provider) SEL(ctx context.Context) ([]bmc.SELEntry, error) {
	if err := p.start(ctx); err != nil {
		return nil, err
	}
	svc, err := p.selService()
	if err != nil {
		return nil, err
	}
	raws, err := p.collectionMembers(svc.entries)
	if err != nil {
		return nil, err
	}
	out := make([]bmc.SELEntry, 0, len(raws))
	for _, raw := range raws {
		e, err := parseEntry(raw)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", svc.entries, err)
		}
		e.Source = svc.uri
		out = append(out, e)
	}
	sortEntries(out)
	return out, nil
}

// ClearSEL posts ClearLog to the same service SEL reads, and nowhere
// else: never a chassis, maintenance or audit log.
func (p *Provider) ClearSEL(ctx context.Context) error {
	if err := p.start(ctx); err != nil {
		return err
	}
	svc, err := p.selService()
	if err != nil {
		return err
	}
	if svc.clearTarget == "" {
		return fmt.Errorf("%w: the event log %s has no ClearLog action", bmc.ErrUnsupported, svc.uri)
	}
	return p.post(svc.clearTarget, struct{}{})
}

// collectionMembers returns a collection's members as raw JSON, inline
// where the BMC sends them inline, following nextLink pages (bounded: a
// service that ignores $skiptoken, as DMTF's mockup server does, would
// send the first page forever).
func (p *Provider) collectionMembers(uri string) ([]json.RawMessage, error) {
	var out []json.RawMessage
	seen := map[string]bool{}
	pages := map[string]bool{}
	next := uri
	for page := 0; next != "" && page < maxPages && !pages[next]; page++ {
		pages[next] = true
		var c struct {
			Members      []json.RawMessage
			NextLink     string `json:"Members@odata.nextLink"`
			ODataNext    string `json:"@odata.nextLink"`
			MembersCount int    `json:"Members@odata.count"`
		}
		if err := p.getJSON(next, &c, true); err != nil {
			return nil, err
		}
		added := 0
		for _, m := range c.Members {
			var ref map[string]json.RawMessage
			if err := json.Unmarshal(m, &ref); err != nil {
				return nil, fmt.Errorf("%w: %s: a member is not an object", bmc.ErrProtocol, next)
			}
			var id string
			_ = json.Unmarshal(ref["@odata.id"], &id)
			if id != "" && seen[cleanURI(id)] {
				continue
			}
			if id != "" {
				seen[cleanURI(id)] = true
			}
			if len(ref) == 1 && id != "" { // a bare link
				var full json.RawMessage
				if err := p.getJSON(id, &full, true); err != nil {
					return nil, err
				}
				m = full
			}
			out = append(out, m)
			added++
			if len(out) >= maxEntries {
				return out, nil
			}
		}
		if added == 0 {
			break
		}
		next = c.NextLink
		if next == "" {
			next = c.ODataNext
		}
	}
	return out, nil
}

// sortEntries orders entries oldest first: gofish fetches members
// concurrently and vendors list them either way (iDRAC newest first).
// Entries without a time come first, as IPMI's pre-init records do; ties
// keep record-id order.
func sortEntries(es []bmc.SELEntry) {
	sort.SliceStable(es, func(i, j int) bool {
		a, b := es[i], es[j]
		if !a.Time.Equal(b.Time) {
			return a.Time.Before(b.Time)
		}
		ai, aerr := strconv.Atoi(a.ID)
		bi, berr := strconv.Atoi(b.ID)
		switch {
		case aerr == nil && berr == nil:
			return ai < bi
		case aerr == nil:
			return true
		case berr == nil:
			return false
		}
		return a.ID < b.ID
	})
}
