package redfishsim

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"

	redfishtrees "github.com/rmm-project/rmm/testdata/redfish"
)

// tree is one vendor's captured service, parsed once per process and shared
// read-only by every server of that vendor (a fleet may run hundreds).
type tree struct {
	vendor *vendor
	// docs maps a clean URI to the captured resource.
	docs map[string][]byte
	// lower maps a lower-cased URI to its clean URI, for iLO, which
	// answers paths case-insensitively (and links some in lower case).
	lower map[string]string
	// inline maps a collection member's URI to the copy its parent
	// collection carries inline, for members captured without a file.
	inline map[string][]byte

	sessions        string // the service root's Links.Sessions
	sessionTimeout  time.Duration
	sessionTemplate object
	sessionsDoc     object

	systems      map[string]*systemInfo // by system URI
	resetTargets map[string]*systemInfo // by Reset action target
	chassis      map[string]bool
	legacy       map[string]bool     // Thermal and Power URIs
	thermal      map[string]tempSlot // Thermal URI -> which temperatures are the machine's
	sensorDocs   map[string]string   // Sensor URI -> the machine sensor it shows
	logs         map[string]*logInfo // by log service URI
	entryColls   map[string]*logInfo // by Entries collection URI
	clearTargets map[string]*logInfo // by ClearLog action target
	sel          *logInfo
}

// systemInfo is a ComputerSystem with a Reset action.
type systemInfo struct {
	path        string
	resetTarget string
	// allowed is what the tree advertises: inline AllowableValues, else
	// the ActionInfo resource's ResetType parameter.
	allowed []string
}

// logInfo is a log service and its captured entries.
type logInfo struct {
	path, entries, clearTarget string
	// collection is the captured Entries collection; captured its members
	// in the vendor's order, each with its URI.
	collection object
	captured   []capturedEntry
	// newestFirst is true when the vendor lists the newest entry first
	// (iDRAC), so new entries go to the front.
	newestFirst bool
	// maxID is the highest numeric captured entry Id: new entries follow it.
	maxID int
	// template is a captured entry new ones are modelled on.
	template object
}

type capturedEntry struct {
	path string
	doc  []byte
}

var (
	treesMu sync.Mutex
	trees   = map[string]*tree{}
)

// loadTree returns the parsed tree of a vendor, loading it on first use.
func loadTree(name string) (*tree, error) {
	v, ok := vendors[name]
	if !ok {
		return nil, fmt.Errorf("redfishsim: unknown vendor %q (want dell, hpe, lenovo, supermicro or dmtf)", name)
	}
	treesMu.Lock()
	defer treesMu.Unlock()
	if t := trees[name]; t != nil {
		return t, nil
	}
	fsys, ok := redfishtrees.Tree(name)
	if !ok {
		return nil, fmt.Errorf("redfishsim: no embedded tree for vendor %q", name)
	}
	t, err := parseTree(v, fsys)
	if err != nil {
		return nil, fmt.Errorf("redfishsim: %s tree: %w", name, err)
	}
	trees[name] = t
	return t, nil
}

// cleanPath turns a request path or an @odata.id into the key the tree
// uses: no query, no fragment, no trailing slash.
func cleanPath(p string) string {
	if i := strings.IndexAny(p, "?#"); i >= 0 {
		p = p[:i]
	}
	for len(p) > 1 && strings.HasSuffix(p, "/") {
		p = strings.TrimSuffix(p, "/")
	}
	if !strings.HasPrefix(p, "/") {
		p = "/" + p
	}
	return p
}

func parseTree(v *vendor, fsys fs.FS) (*tree, error) {
	t := &tree{
		vendor:       v,
		docs:         map[string][]byte{},
		lower:        map[string]string{},
		inline:       map[string][]byte{},
		systems:      map[string]*systemInfo{},
		resetTargets: map[string]*systemInfo{},
		chassis:      map[string]bool{},
		legacy:       map[string]bool{},
		thermal:      map[string]tempSlot{},
		sensorDocs:   map[string]string{},
		logs:         map[string]*logInfo{},
		entryColls:   map[string]*logInfo{},
		clearTargets: map[string]*logInfo{},
	}
	err := fs.WalkDir(fsys, "redfish", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || d.Name() != "index.json" {
			return nil
		}
		b, err := fs.ReadFile(fsys, p)
		if err != nil {
			return err
		}
		if !json.Valid(b) {
			return fmt.Errorf("%s: invalid JSON", p)
		}
		key := cleanPath("/" + path.Dir(p))
		t.docs[key] = b
		t.lower[strings.ToLower(key)] = key
		return nil
	})
	if err != nil {
		return nil, err
	}
	root, ok := t.object("/redfish/v1")
	if !ok {
		return nil, fmt.Errorf("no service root")
	}
	// Inline members first: later steps look resources up through them.
	for _, b := range t.docs {
		t.addInline(b)
	}

	var links struct{ Sessions link }
	_ = json.Unmarshal(root.get("Links"), &links)
	t.sessions = cleanPath(links.Sessions.ID)
	if ss, ok := t.object(cleanPath(root.linkOf("SessionService"))); ok {
		var secs int
		_ = json.Unmarshal(ss.get("SessionTimeout"), &secs)
		t.sessionTimeout = time.Duration(secs) * time.Second
	}
	if t.sessionTimeout <= 0 {
		t.sessionTimeout = 30 * time.Minute
	}
	t.sessionsDoc, _ = t.object(t.sessions)
	for p := range t.docs {
		if strings.HasPrefix(p, t.sessions+"/") && strings.Count(strings.TrimPrefix(p, t.sessions+"/"), "/") == 0 {
			t.sessionTemplate, _ = t.object(p)
		}
	}

	for _, sys := range t.members(cleanPath(root.linkOf("Systems"))) {
		if err := t.addSystem(sys); err != nil {
			return nil, err
		}
		if o, ok := t.object(sys); ok {
			t.addLogServices(o.linkOf("LogServices"))
		}
	}
	for _, mgr := range t.members(cleanPath(root.linkOf("Managers"))) {
		if o, ok := t.object(mgr); ok {
			t.addLogServices(o.linkOf("LogServices"))
		}
	}
	for _, ch := range t.members(cleanPath(root.linkOf("Chassis"))) {
		t.chassis[ch] = true
		if o, ok := t.object(ch); ok {
			for _, k := range []string{"Thermal", "Power"} {
				if l := o.linkOf(k); l != "" {
					t.legacy[cleanPath(l)] = true
				}
			}
			t.addTemperatures(o)
		}
	}
	if len(t.resetTargets) == 0 {
		return nil, fmt.Errorf("no system with a #ComputerSystem.Reset action")
	}
	t.sel = t.logs[v.selService]
	if t.sel == nil {
		return nil, fmt.Errorf("no log service %s", v.selService)
	}
	return t, nil
}

// addInline records the inline copies of a collection's members that have
// no file of their own (Supermicro's log entries: 509 inline, 9 files).
// Members are re-encoded through object to keep the vendor's member order.
func (t *tree) addInline(coll []byte) {
	o, err := parseObject(coll)
	if err != nil {
		return
	}
	var members []json.RawMessage
	if json.Unmarshal(o.get("Members"), &members) != nil {
		return
	}
	for _, m := range members {
		mo, err := parseObject(m)
		if err != nil || len(mo) < 2 {
			continue
		}
		id := cleanPath(mo.getString("@odata.id"))
		if _, own := t.docs[id]; !own && id != "/" {
			t.inline[id] = mo.pretty()
		}
	}
}

func (t *tree) addSystem(sys string) error {
	o, ok := t.object(sys)
	if !ok {
		return nil
	}
	var actions struct {
		Reset struct {
			Target     string   `json:"target"`
			Allowable  []string `json:"ResetType@Redfish.AllowableValues"`
			ActionInfo string   `json:"@Redfish.ActionInfo"`
		} `json:"#ComputerSystem.Reset"`
	}
	if err := json.Unmarshal(o.get("Actions"), &actions); err != nil || actions.Reset.Target == "" {
		return nil
	}
	si := &systemInfo{path: sys, resetTarget: cleanPath(actions.Reset.Target), allowed: actions.Reset.Allowable}
	if len(si.allowed) == 0 && actions.Reset.ActionInfo != "" {
		ai, ok := t.lookup(cleanPath(actions.Reset.ActionInfo))
		if !ok {
			return fmt.Errorf("%s: ActionInfo %s missing", sys, actions.Reset.ActionInfo)
		}
		var info struct {
			Parameters []struct {
				Name            string
				AllowableValues []string
			}
		}
		if err := json.Unmarshal(ai, &info); err != nil {
			return fmt.Errorf("%s: %w", actions.Reset.ActionInfo, err)
		}
		for _, p := range info.Parameters {
			if p.Name == "ResetType" {
				si.allowed = p.AllowableValues
			}
		}
	}
	t.systems[sys] = si
	t.resetTargets[si.resetTarget] = si
	return nil
}

func (t *tree) addLogServices(coll string) {
	if coll == "" {
		return
	}
	for _, svc := range t.members(cleanPath(coll)) {
		if t.logs[svc] != nil { // Lenovo links one collection twice
			continue
		}
		o, ok := t.object(svc)
		if !ok {
			continue
		}
		li := &logInfo{path: svc, entries: cleanPath(o.linkOf("Entries"))}
		var actions struct {
			Clear struct {
				Target string `json:"target"`
			} `json:"#LogService.ClearLog"`
		}
		_ = json.Unmarshal(o.get("Actions"), &actions)
		if actions.Clear.Target != "" {
			li.clearTarget = cleanPath(actions.Clear.Target)
			t.clearTargets[li.clearTarget] = li
		}
		if li.entries != "/" {
			if coll, ok := t.object(li.entries); ok {
				li.collection = coll
				t.entryColls[li.entries] = li
				t.loadEntries(li)
			}
		} else {
			li.entries = ""
		}
		t.logs[svc] = li
	}
}

func (t *tree) loadEntries(li *logInfo) {
	var members []json.RawMessage
	_ = json.Unmarshal(li.collection.get("Members"), &members)
	var ids []int
	for _, m := range members {
		var ref link
		if json.Unmarshal(m, &ref) != nil || ref.ID == "" {
			continue
		}
		p := cleanPath(ref.ID)
		doc, ok := t.lookup(p)
		if !ok {
			continue
		}
		li.captured = append(li.captured, capturedEntry{path: p, doc: doc})
		o, err := parseObject(doc)
		if err != nil {
			continue
		}
		if li.template == nil {
			li.template = o
		}
		if n, err := strconv.Atoi(o.getString("Id")); err == nil {
			ids = append(ids, n)
			li.maxID = max(li.maxID, n)
		}
	}
	li.newestFirst = len(ids) > 1 && ids[0] > ids[len(ids)-1]
}

// lookup finds a captured resource: its own file, else its parent
// collection's inline copy; case-insensitively for vendors that do that.
func (t *tree) lookup(p string) ([]byte, bool) {
	if b, ok := t.docs[p]; ok {
		return b, true
	}
	if b, ok := t.inline[p]; ok {
		return b, true
	}
	if t.vendor.caseInsensitive {
		if k, ok := t.lower[strings.ToLower(p)]; ok {
			return t.docs[k], true
		}
	}
	return nil, false
}

// canonical returns the tree's own spelling of p (iLO's lower-case links
// name the same resource).
func (t *tree) canonical(p string) string {
	if _, ok := t.docs[p]; ok {
		return p
	}
	if t.vendor.caseInsensitive {
		if k, ok := t.lower[strings.ToLower(p)]; ok {
			return k
		}
	}
	return p
}

func (t *tree) object(p string) (object, bool) {
	b, ok := t.lookup(p)
	if !ok {
		return nil, false
	}
	o, err := parseObject(b)
	if err != nil {
		return nil, false
	}
	return o, true
}

// members lists a collection's member URIs.
func (t *tree) members(coll string) []string {
	o, ok := t.object(coll)
	if !ok {
		return nil
	}
	var refs []link
	_ = json.Unmarshal(o.get("Members"), &refs)
	var out []string
	for _, r := range refs {
		if r.ID != "" {
			out = append(out, cleanPath(r.ID))
		}
	}
	return out
}

// link is a Redfish reference.
type link struct {
	ID string `json:"@odata.id"`
}

// linkOf returns the @odata.id of a member that is a link.
func (o object) linkOf(key string) string {
	var l link
	if raw := o.get(key); raw != nil {
		_ = json.Unmarshal(raw, &l)
	}
	return l.ID
}
