package inventory

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/rmm-project/rmm/secret"
)

// Accepted values, in the order messages list them.
var (
	knownProtocols = []string{ProtocolIPMI, ProtocolRedfish, ProtocolIPMItool}
	knownVendors   = []string{"dell", "hpe", "lenovo", "supermicro", "dmtf"}
	knownScenarios = []string{"dead", "slow", "wrong-credentials", "panicked", "sol-busy", "overheat", "replaced"}
	cipherSuites   = map[int]bool{1: true, 2: true, 3: true, 17: true}
)

// Keys allowed in each mapping.
var (
	topKeys        = []string{"version", "defaults", "credentials", "groups", "hosts"}
	settingKeys    = []string{"protocols", "credentials", "labels", "ipmi", "redfish", "expect", "sim"}
	groupKeys      = append([]string{"description"}, settingKeys...)
	hostKeys       = append([]string{"name", "bmc", "groups"}, settingKeys...)
	credentialKeys = []string{"user", "password_env", "password_file", "password_command", "password", "timeout"}
	ipmiKeys       = []string{"port", "cipher_suite"}
	redfishKeys    = []string{"port", "insecure", "fingerprint"}
	expectKeys     = []string{"guid", "uuid", "serial", "power"}
	simKeys        = []string{"vendor", "scenario", "delay"}
)

const maxSimDelay = 10 * time.Minute

// settings are what defaults, groups and host entries can set. Zero values
// mean "not set here"; merge applies the set ones.
type settings struct {
	protocols   []string
	credentials string
	// badCredentials marks a credentials reference that was reported
	// unknown, so hosts are not also told they have none.
	badCredentials bool
	// labels are pairs in file order (later pairs win); a slice, not a
	// map, because most hosts' own labels are one or two pairs and a
	// map per layer per host dominated the load time of big fleets.
	// merge leaves them alone: hostEntry folds every layer into the
	// host's one map.
	labels      []labelPair
	ipmiPort    uint16
	cipherSuite int
	redfishPort uint16
	fingerprint string
	insecure    *bool
	power       string
	guid, uuid  string
	serial      string
	simVendor   string
	simScen     []string
	simDelay    *time.Duration
}

func (s *settings) merge(o *settings) {
	if o.protocols != nil {
		s.protocols = o.protocols
	}
	if o.credentials != "" {
		s.credentials = o.credentials
	}
	s.badCredentials = s.badCredentials || o.badCredentials
	if o.ipmiPort != 0 {
		s.ipmiPort = o.ipmiPort
	}
	if o.cipherSuite != 0 {
		s.cipherSuite = o.cipherSuite
	}
	if o.redfishPort != 0 {
		s.redfishPort = o.redfishPort
	}
	if o.fingerprint != "" {
		s.fingerprint = o.fingerprint
	}
	if o.insecure != nil {
		s.insecure = o.insecure
	}
	if o.power != "" {
		s.power = o.power
	}
	if o.guid != "" {
		s.guid = o.guid
	}
	if o.uuid != "" {
		s.uuid = o.uuid
	}
	if o.serial != "" {
		s.serial = o.serial
	}
	if o.simVendor != "" {
		s.simVendor = o.simVendor
	}
	if o.simScen != nil {
		s.simScen = o.simScen
	}
	if o.simDelay != nil {
		s.simDelay = o.simDelay
	}
}

type labelPair struct{ key, value string }

type parser struct {
	file   string
	probs  []Problem
	inv    *Inventory
	groups map[string]*settings
	// groupOrder and credOrder keep file order for suggestions.
	groupOrder []string
	credOrder  []string
	defaults   settings
	ipAt       map[netip.Addr]*Host
	// hostBuf and labelBuf are reused by every host entry.
	hostBuf, labelBuf []field
}

func (p *parser) errf(line int, format string, a ...any) {
	p.probs = append(p.probs, Problem{File: p.file, Line: line, Msg: fmt.Sprintf(format, a...)})
}

func sortProblems(probs []Problem) {
	sort.SliceStable(probs, func(i, j int) bool { return probs[i].Line < probs[j].Line })
}

// parse builds what it can: inv is nil only when the file is not a YAML
// mapping at all. Hosts with errors are left out.
func parse(file string, data []byte) (*Inventory, []Problem) {
	p := &parser{
		file:   file,
		groups: map[string]*settings{},
		ipAt:   map[netip.Addr]*Host{},
		inv: &Inventory{
			Path:        file,
			Groups:      map[string]*Group{},
			Credentials: map[string]*CredentialSet{},
			byName:      map[string]*Host{},
		},
	}
	doc, err := decode(data)
	if err != nil {
		se, _ := err.(*syntaxError)
		line, msg := 0, err.Error()
		if se != nil {
			line, msg = se.line, se.msg
		}
		// yaml.v3's line arithmetic can overshoot by one at the end.
		line = min(line, lineCount(data))
		p.errf(line, "%s", msg)
		return nil, p.probs
	}
	if doc == nil || doc.isNull() {
		p.errf(1, "the file is empty; an inventory needs at least \"version: 1\" and a hosts list")
		return nil, p.probs
	}
	if doc.kind != mappingNode {
		p.errf(doc.line, "the top level must be a mapping (version:, defaults:, credentials:, groups:, hosts:), not %s", describe(doc))
		return nil, p.probs
	}
	top := map[string]field{}
	for _, f := range p.fields(doc, "the top level", topKeys) {
		top[f.key] = f
	}
	if f, ok := top["version"]; !ok {
		p.errf(doc.line, "\"version: 1\" is missing")
	} else if v, ok := p.scalar(f, "version"); ok && v != "1" {
		p.errf(f.v.line, "version %q is not supported: this rmm reads version 1", v)
	}
	if f, ok := top["credentials"]; ok {
		p.credentials(f)
	}
	if f, ok := top["groups"]; ok {
		p.groupDefs(f)
	}
	if f, ok := top["defaults"]; ok {
		if s := p.settings(f, "defaults", settingKeys, false); s != nil {
			p.defaults = *s
		}
	}
	if f, ok := top["hosts"]; ok {
		p.hosts(f)
	} else {
		p.errf(doc.line, "the hosts list is missing")
	}
	p.inv.complete = !HasErrors(p.probs)
	// yaml.v3 can place an implicit null just past the last line.
	last := lineCount(data)
	for i := range p.probs {
		p.probs[i].Line = min(p.probs[i].Line, last)
	}
	sortProblems(p.probs)
	return p.inv, dedupe(p.probs)
}

// lineCount counts lines the way YAML does: \n, \r\n and a lone \r each
// end one.
func lineCount(data []byte) int {
	n := 1
	for i, b := range data {
		if b == '\n' || (b == '\r' && (i+1 == len(data) || data[i+1] != '\n')) {
			n++
		}
	}
	return n
}

func dedupe(probs []Problem) []Problem {
	out := probs[:0]
	for i, pr := range probs {
		if i > 0 && pr == probs[i-1] {
			continue
		}
		out = append(out, pr)
	}
	return out
}

// field is one key: value pair of a mapping.
type field struct {
	key  string
	k, v *node
}

// describe names a node's shape for messages.
func describe(n *node) string {
	switch {
	case n == nil || n.isNull():
		return "empty"
	case n.kind == mappingNode:
		return "a mapping"
	case n.kind == sequenceNode:
		return "a list"
	case n.kind == aliasNode:
		return "an alias"
	}
	return fmt.Sprintf("%q", n.value)
}

// usable reports problems that make any node unusable (aliases, tags).
func (p *parser) usable(n *node, what string) bool {
	switch {
	case n.kind == aliasNode:
		p.errf(n.line, "%s: YAML aliases (*name) are not supported; share settings with defaults or groups", what)
		return false
	case n.tagged:
		p.errf(n.line, "%s: YAML tags (!!str, !name) are not supported", what)
		return false
	}
	return true
}

// fields checks that n is a mapping (null counts as empty) and returns its
// pairs whose keys are known, reporting unknown and duplicate keys. A nil
// known accepts any key (maps whose keys are names: credentials, groups,
// labels).
func (p *parser) fields(n *node, what string, known []string) []field {
	return p.fieldsInto(nil, n, what, known)
}

// fieldsInto is fields appending to buf, so hot paths can reuse one.
func (p *parser) fieldsInto(buf []field, n *node, what string, known []string) []field {
	if n.isNull() {
		return nil
	}
	if !p.usable(n, what) {
		return nil
	}
	if n.kind != mappingNode {
		p.errf(n.line, "%s must be a mapping (key: value), not %s", what, describe(n))
		return nil
	}
	out := buf[:0]
	var seen map[string]int // only for big mappings; small ones scan out
	if len(n.content) > 32 {
		seen = make(map[string]int, len(n.content)/2)
	}
	for i := 0; i+1 < len(n.content); i += 2 {
		k, v := n.content[i], n.content[i+1]
		if k.kind != scalarNode || k.tagged || k.isNull() {
			p.errf(k.line, "%s: keys must be plain words, not %s", what, describe(k))
			continue
		}
		first, dup := 0, false
		if seen != nil {
			first, dup = seen[k.value]
			seen[k.value] = k.line
		} else {
			for j := 0; j < i; j += 2 {
				if c := n.content[j]; c.kind == scalarNode && c.value == k.value {
					first, dup = c.line, true
					break
				}
			}
		}
		if dup {
			if seen != nil {
				seen[k.value] = first
			}
			p.errf(k.line, "%s: duplicate key %q (first at line %d)", what, k.value, first)
			continue
		}
		if known != nil && !contains(known, k.value) {
			msg := fmt.Sprintf("unknown key %q in %s", k.value, what)
			if s := suggest(k.value, known); s != "" {
				msg += fmt.Sprintf(" (did you mean %q?)", s)
			}
			p.errf(k.line, "%s", msg)
			continue
		}
		if !p.usable(v, k.value) {
			continue
		}
		out = append(out, field{key: k.value, k: k, v: v})
	}
	return out
}

// hasKey reports whether mapping n has key k, usable or not.
func hasKey(n *node, k string) bool {
	for i := 0; i+1 < len(n.content); i += 2 {
		if n.content[i].kind == scalarNode && n.content[i].value == k {
			return true
		}
	}
	return false
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// scalar returns a non-empty scalar value.
func (p *parser) scalar(f field, what string) (string, bool) {
	switch {
	case f.v.isNull():
		p.errf(f.k.line, "%s has no value", what)
		return "", false
	case f.v.kind != scalarNode:
		p.errf(f.v.line, "%s must be a single value, not %s", what, describe(f.v))
		return "", false
	case f.v.value == "":
		p.errf(f.v.line, "%s is empty", what)
		return "", false
	}
	return f.v.value, true
}

// list returns the scalar items of a list; a single scalar counts as a
// one-item list.
func (p *parser) list(f field, what string) ([]*node, bool) {
	switch {
	case f.v.isNull():
		p.errf(f.k.line, "%s has no value", what)
		return nil, false
	case f.v.kind == scalarNode:
		return []*node{f.v}, true
	case f.v.kind != sequenceNode:
		p.errf(f.v.line, "%s must be a list like [a, b], not %s", what, describe(f.v))
		return nil, false
	}
	ok := true
	for _, it := range f.v.content {
		if !p.usable(it, what) {
			ok = false
			continue
		}
		if it.kind != scalarNode || it.isNull() || it.value == "" {
			p.errf(it.line, "%s: each item must be a single word, not %s", what, describe(it))
			ok = false
		}
	}
	return f.v.content, ok
}

func (p *parser) boolean(f field, what string) (bool, bool) {
	v, ok := p.scalar(f, what)
	if !ok {
		return false, false
	}
	if !f.v.str {
		switch v {
		case "true", "True", "TRUE":
			return true, true
		case "false", "False", "FALSE":
			return false, true
		}
	}
	p.errf(f.v.line, "%s must be true or false, not %q", what, v)
	return false, false
}

func (p *parser) port(f field, what string) (uint16, bool) {
	v, ok := p.scalar(f, what)
	if !ok {
		return 0, false
	}
	n, err := strconv.Atoi(v)
	if err != nil || !allDigits(v) {
		p.errf(f.v.line, "%s %q is not a port number (1-65535)", what, v)
		return 0, false
	}
	if n < 1 || n > 65535 {
		p.errf(f.v.line, "%s %s is out of range: a port is 1-65535", what, v)
		return 0, false
	}
	return uint16(n), true
}

func (p *parser) duration(f field, what string, max time.Duration) (time.Duration, bool) {
	v, ok := p.scalar(f, what)
	if !ok {
		return 0, false
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		p.errf(f.v.line, "%s %q is not a duration like 3s or 500ms", what, v)
		return 0, false
	}
	if d < 0 || d > max {
		p.errf(f.v.line, "%s %s is out of range: 0 to %s", what, v, max)
		return 0, false
	}
	return d, true
}

// validName reports whether s is a valid host, group or credentials name.
func validName(s string) bool {
	if s == "" || len(s) > 253 || !isLowerAlnum(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if !isLowerAlnum(c) && c != '.' && c != '_' && c != '-' {
			return false
		}
	}
	return true
}

func isLowerAlnum(c byte) bool { return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' }

const nameRule = "use lowercase letters, digits, '.', '_' and '-', starting with a letter or digit"

// validLabelKey allows '/' too, for prefixes like example.com/role.
func validLabelKey(s string) bool {
	if s == "" || len(s) > 253 || !isLowerAlnum(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if !isLowerAlnum(c) && c != '.' && c != '_' && c != '-' && c != '/' {
			return false
		}
	}
	return true
}

// validLabelValue keeps values usable in selectors (site=ams): no blanks,
// commas or '='.
func validLabelValue(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c == ',' || c == '=' || c == 0x7f {
			return false
		}
	}
	return true
}

func (p *parser) credentials(f field) {
	for _, cf := range p.fields(f.v, "credentials", nil) {
		name := cf.key
		what := "credentials " + name
		if !validName(name) {
			p.errf(cf.k.line, "credentials name %q is not valid: %s", name, nameRule)
			continue
		}
		c := &CredentialSet{Name: name, Pos: Pos{File: p.file, Line: cf.k.line}, timeout: DefaultCommandTimeout}
		fs := p.fields(cf.v, what, credentialKeys)
		if cf.v.isNull() || cf.v.kind != mappingNode {
			if cf.v.isNull() {
				p.errf(cf.k.line, "%s has no user and no password source", what)
			}
			continue
		}
		var sources []string
		var hasUser, hasTimeout bool
		for _, kf := range fs {
			switch kf.key {
			case "user":
				hasUser = true
				switch {
				case kf.v.isNull():
					c.User = ""
				case kf.v.kind != scalarNode:
					p.errf(kf.v.line, "%s: user must be a single value, not %s", what, describe(kf.v))
				default:
					c.User = kf.v.value
				}
			case "password_env":
				sources = append(sources, kf.key)
				if v, good := p.scalar(kf, what+": password_env"); !good {
					continue
				} else if !validEnvName(v) {
					p.errf(kf.v.line, "%s: password_env %q is not an environment variable name", what, v)
				} else {
					c.kind, c.env = sourceEnv, v
				}
			case "password_file":
				sources = append(sources, kf.key)
				if v, good := p.scalar(kf, what+": password_file"); good {
					if !filepath.IsAbs(v) {
						v = filepath.Join(filepath.Dir(p.file), v)
					}
					c.kind, c.file = sourceFile, v
				}
			case "password_command":
				sources = append(sources, kf.key)
				if kf.v.kind == scalarNode && !kf.v.isNull() {
					p.errf(kf.v.line, "%s: password_command must be a list of words like [pass, show, bmc/root]; rmm runs it without a shell", what)
					continue
				}
				items, good := p.list(kf, what+": password_command")
				if !good {
					continue
				}
				if len(items) == 0 {
					p.errf(kf.v.line, "%s: password_command is empty", what)
					continue
				}
				c.kind = sourceCommand
				for _, it := range items {
					c.argv = append(c.argv, it.value)
				}
			case "password":
				sources = append(sources, kf.key)
				if kf.v.kind != scalarNode || kf.v.isNull() || kf.v.value == "" {
					p.errf(kf.k.line, "%s: password is empty", what)
				} else {
					c.kind, c.literal = sourceLiteral, secret.New(kf.v.value)
				}
			case "timeout":
				hasTimeout = true
				if d, good := p.duration(kf, what+": timeout", 5*time.Minute); good {
					if d == 0 {
						p.errf(kf.v.line, "%s: timeout must be more than 0s", what)
						continue
					}
					c.timeout = d
				}
			}
		}
		if !hasUser {
			p.errf(cf.k.line, "%s: user is missing", what)
		}
		switch len(sources) {
		case 0:
			p.errf(cf.k.line, "%s: no password source; set one of password_env, password_file, password_command (or password, for demos)", what)
		case 1:
		default:
			p.errf(cf.k.line, "%s: %s are all set; use exactly one password source", what, strings.Join(sources, ", "))
		}
		if hasTimeout && c.kind != sourceCommand && len(sources) == 1 {
			p.errf(cf.k.line, "%s: timeout only applies to password_command", what)
		}
		// A set with errors is still recorded so that references to it
		// do not add "unknown credentials" noise.
		p.inv.Credentials[name] = c
		p.credOrder = append(p.credOrder, name)
	}
}

func validEnvName(s string) bool {
	if s == "" || s[0] >= '0' && s[0] <= '9' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

func (p *parser) groupDefs(f field) {
	// Declare every name first, so a group's settings can be checked
	// against the full list.
	fs := p.fields(f.v, "groups", nil)
	for _, gf := range fs {
		if !validName(gf.key) {
			p.errf(gf.k.line, "group name %q is not valid: %s", gf.key, nameRule)
			continue
		}
		if gf.key == "all" {
			p.errf(gf.k.line, "group name \"all\" is reserved: the selector all already means every host")
			continue
		}
		p.inv.Groups[gf.key] = &Group{Name: gf.key, Pos: Pos{File: p.file, Line: gf.k.line}}
		p.groupOrder = append(p.groupOrder, gf.key)
	}
	for _, gf := range fs {
		g, ok := p.inv.Groups[gf.key]
		if !ok {
			continue
		}
		what := "group " + gf.key
		fs := p.fields(gf.v, what, groupKeys)
		for _, kf := range fs {
			if kf.key != "description" {
				continue
			}
			if kf.v.kind != scalarNode || kf.v.isNull() {
				p.errf(kf.k.line, "%s: description must be a single line of text, not %s", what, describe(kf.v))
				continue
			}
			g.Description = kf.v.value
		}
		p.groups[gf.key] = p.settingsFrom(fs, what, false)
	}
}

// settings parses the shared settings of defaults, a group or a host entry
// (host=true allows per-host identity). It returns nil if f.v is not a
// mapping; keys with errors are left unset.
func (p *parser) settings(f field, what string, keys []string, host bool) *settings {
	if f.v.isNull() {
		return &settings{}
	}
	fs := p.fields(f.v, what, keys)
	if f.v.kind != mappingNode {
		return nil
	}
	return p.settingsFrom(fs, what, host)
}

// settingsFrom reads the setting keys among fs (checked by fields already).
func (p *parser) settingsFrom(fs []field, what string, host bool) *settings {
	s := &settings{}
	for _, kf := range fs {
		switch kf.key {
		case "protocols":
			items, ok := p.list(kf, "protocols")
			if !ok {
				continue
			}
			if len(items) == 0 {
				p.errf(kf.v.line, "protocols is empty; list one or more of %s", strings.Join(knownProtocols, ", "))
				continue
			}
			var list []string
			good := true
			for _, it := range items {
				if !contains(knownProtocols, it.value) {
					msg := fmt.Sprintf("unknown protocol %q: use %s", it.value, strings.Join(knownProtocols, ", "))
					if s := suggest(it.value, knownProtocols); s != "" {
						msg += fmt.Sprintf(" (did you mean %q?)", s)
					}
					p.errf(it.line, "%s", msg)
					good = false
					continue
				}
				if contains(list, it.value) {
					p.errf(it.line, "protocol %q is listed twice", it.value)
					good = false
					continue
				}
				list = append(list, it.value)
			}
			if good {
				s.protocols = list
			}
		case "credentials":
			v, ok := p.scalar(kf, "credentials")
			if !ok {
				continue
			}
			if _, ok := p.inv.Credentials[v]; !ok {
				msg := fmt.Sprintf("unknown credentials %q", v)
				if sg := suggest(v, p.credOrder); sg != "" {
					msg += fmt.Sprintf(" (did you mean %q?)", sg)
				}
				if len(p.credOrder) == 0 {
					msg += "; credential sets are declared under credentials:"
				}
				p.errf(kf.v.line, "%s", msg)
				s.badCredentials = true
				continue
			}
			s.credentials = v
		case "labels":
			p.labels(kf, s)
		case "ipmi":
			for _, sf := range p.fields(kf.v, "ipmi", ipmiKeys) {
				switch sf.key {
				case "port":
					if v, ok := p.port(sf, "ipmi.port"); ok {
						s.ipmiPort = v
					}
				case "cipher_suite":
					v, ok := p.scalar(sf, "ipmi.cipher_suite")
					if !ok {
						continue
					}
					n, err := strconv.Atoi(v)
					if err != nil || !allDigits(v) || !cipherSuites[n] {
						p.errf(sf.v.line, "ipmi.cipher_suite %s is not supported: use 3 or 17 (1 and 2 are accepted too), or leave it out to let rmm choose", v)
						continue
					}
					s.cipherSuite = n
				}
			}
		case "redfish":
			for _, sf := range p.fields(kf.v, "redfish", redfishKeys) {
				switch sf.key {
				case "port":
					if v, ok := p.port(sf, "redfish.port"); ok {
						s.redfishPort = v
					}
				case "insecure":
					if v, ok := p.boolean(sf, "redfish.insecure"); ok {
						s.insecure = &v
						if v {
							p.inv.insecureAt = append(p.inv.insecureAt, Pos{File: p.file, Line: sf.v.line})
						}
					}
				case "fingerprint":
					v, ok := p.scalar(sf, "redfish.fingerprint")
					if !ok {
						continue
					}
					fp, good := normFingerprint(v)
					if !good {
						p.errf(sf.v.line, "redfish.fingerprint %q is not a SHA-256 fingerprint: want 64 hex digits, with or without colons, optionally after \"sha256:\"", v)
						continue
					}
					s.fingerprint = fp
				}
			}
		case "expect":
			for _, sf := range p.fields(kf.v, "expect", expectKeys) {
				if sf.key != "power" && !host {
					p.errf(sf.k.line, "expect.%s is one machine's identity: set it on the host entry, not in %s", sf.key, what)
					continue
				}
				v, ok := p.scalar(sf, "expect."+sf.key)
				if !ok {
					continue
				}
				switch sf.key {
				case "power":
					if v != "on" && v != "off" {
						p.errf(sf.v.line, "expect.power must be on or off, not %q", v)
						continue
					}
					s.power = v
				case "guid", "uuid":
					u, good := normUUID(v)
					if !good {
						p.errf(sf.v.line, "expect.%s %q is not a GUID/UUID: want 8-4-4-4-12 hex digits", sf.key, v)
						continue
					}
					if sf.key == "guid" {
						s.guid = u
					} else {
						s.uuid = u
					}
				case "serial":
					s.serial = strings.TrimSpace(v)
				}
			}
		case "sim":
			for _, sf := range p.fields(kf.v, "sim", simKeys) {
				switch sf.key {
				case "vendor":
					v, ok := p.scalar(sf, "sim.vendor")
					if !ok {
						continue
					}
					if !contains(knownVendors, v) {
						p.errf(sf.v.line, "sim.vendor %q is not one of %s", v, strings.Join(knownVendors, ", "))
						continue
					}
					s.simVendor = v
				case "scenario":
					items, ok := p.list(sf, "sim.scenario")
					if !ok {
						continue
					}
					list := []string{}
					for _, it := range items {
						if !contains(knownScenarios, it.value) {
							msg := fmt.Sprintf("sim.scenario %q is not one of %s", it.value, strings.Join(knownScenarios, ", "))
							if sg := suggest(it.value, knownScenarios); sg != "" {
								msg += fmt.Sprintf(" (did you mean %q?)", sg)
							}
							p.errf(it.line, "%s", msg)
							ok = false
							continue
						}
						if !contains(list, it.value) {
							list = append(list, it.value)
						}
					}
					if ok {
						s.simScen = list
					}
				case "delay":
					if d, ok := p.duration(sf, "sim.delay", maxSimDelay); ok {
						s.simDelay = &d
					}
				}
			}
		}
	}
	return s
}

func (p *parser) labels(f field, s *settings) {
	p.labelBuf = p.fieldsInto(p.labelBuf, f.v, "labels", nil)
	for _, lf := range p.labelBuf {
		if !validLabelKey(lf.key) {
			p.errf(lf.k.line, "label %q is not a valid label name: %s ('/' allowed)", lf.key, nameRule)
			continue
		}
		if lf.v.isNull() {
			p.errf(lf.k.line, "label %s has no value", lf.key)
			continue
		}
		if lf.v.kind != scalarNode {
			p.errf(lf.v.line, "label %s must be a single value, not %s", lf.key, describe(lf.v))
			continue
		}
		if !validLabelValue(lf.v.value) {
			p.errf(lf.v.line, "label %s=%q is not a valid value: no blanks, commas or '='", lf.key, lf.v.value)
			continue
		}
		s.labels = append(s.labels, labelPair{lf.key, lf.v.value})
	}
}

// normFingerprint accepts "sha256:3F:A1:...", "3fa1..." and returns 64
// lowercase hex digits.
func normFingerprint(s string) (string, bool) {
	if len(s) > 7 && strings.EqualFold(s[:7], "sha256:") {
		s = s[7:]
	}
	if strings.Contains(s, ":") {
		parts := strings.Split(s, ":")
		if len(parts) != 32 {
			return "", false
		}
		for _, p := range parts {
			if len(p) != 2 {
				return "", false
			}
		}
		s = strings.Join(parts, "")
	}
	if len(s) != 64 || !isHex(s) {
		return "", false
	}
	return strings.ToLower(s), true
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

// normUUID accepts 8-4-4-4-12 hex and returns it lowercase.
func normUUID(s string) (string, bool) {
	if len(s) != 36 {
		return "", false
	}
	for i := 0; i < 36; i++ {
		switch i {
		case 8, 13, 18, 23:
			if s[i] != '-' {
				return "", false
			}
		default:
			if !isHex(s[i : i+1]) {
				return "", false
			}
		}
	}
	return strings.ToLower(s), true
}

// parseBMC reads a bmc value: an IP literal with an optional port. It never
// resolves: a name is an error that says why.
func parseBMC(s string) (netip.Addr, uint16, string) {
	check := func(a netip.Addr) string {
		switch {
		case a.Zone() != "":
			return fmt.Sprintf("bmc %q has an IPv6 zone (%%%s); zones are not supported, write a global or unique-local address", s, a.Zone())
		case a.IsUnspecified(), a.IsMulticast(), a == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
			return fmt.Sprintf("bmc %q is not a unicast address", s)
		}
		return ""
	}
	if a, err := netip.ParseAddr(s); err == nil {
		if msg := check(a); msg != "" {
			return netip.Addr{}, 0, msg
		}
		return a.Unmap(), 0, ""
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		if msg := check(ap.Addr()); msg != "" {
			return netip.Addr{}, 0, msg
		}
		if ap.Port() == 0 {
			return netip.Addr{}, 0, fmt.Sprintf("bmc %q has port 0: a port is 1-65535", s)
		}
		return ap.Addr().Unmap(), ap.Port(), ""
	}
	// Not an IP: say why as precisely as we can.
	host, port, hasPort := s, "", false
	if i := strings.LastIndexByte(s, ':'); i >= 0 && strings.Count(s, ":") == 1 {
		host, port, hasPort = s[:i], s[i+1:], true
	} else if strings.HasPrefix(s, "[") {
		if i := strings.Index(s, "]:"); i > 0 {
			host, port, hasPort = s[1:i], s[i+2:], true
		}
	}
	if hasPort {
		if _, err := netip.ParseAddr(host); err == nil {
			return netip.Addr{}, 0, fmt.Sprintf("bmc %q has a bad port %q: a port is 1-65535", s, port)
		}
	}
	if looksLikeHostname(host) {
		return netip.Addr{}, 0, fmt.Sprintf("bmc %q is a host name; rmm never uses DNS, write the BMC's IP address", s)
	}
	return netip.Addr{}, 0, fmt.Sprintf("bmc %q is not an IP address (write it like 10.0.5.11, fd00::11, 10.0.5.11:6230 or [fd00::11]:6230)", s)
}

// looksLikeHostname reports whether s is shaped like a DNS name with at
// least one letter (so 10.0.5.300 is a bad IP, not a name).
func looksLikeHostname(s string) bool {
	letter := false
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_':
			letter = true
		case c >= '0' && c <= '9' || c == '.' || c == '-':
		default:
			return false
		}
	}
	return letter
}

// portKind groups protocols by the port they use.
func portKind(proto string) string {
	if proto == ProtocolRedfish {
		return ProtocolRedfish
	}
	return ProtocolIPMI
}

func (p *parser) hosts(f field) {
	if f.v.isNull() {
		p.errf(f.k.line, "the hosts list is empty")
		return
	}
	if f.v.kind != sequenceNode {
		p.errf(f.v.line, "hosts must be a list of entries (- name: ...), not %s", describe(f.v))
		return
	}
	if len(f.v.content) == 0 {
		p.errf(f.v.line, "the hosts list is empty")
		return
	}
	p.inv.Hosts = make([]*Host, 0, len(f.v.content))
	for _, e := range f.v.content {
		p.hostEntry(e)
	}
}

func (p *parser) hostEntry(e *node) {
	if !p.usable(e, "host") {
		return
	}
	if e.kind != mappingNode {
		p.errf(e.line, "each host must be a mapping (name:, bmc:, ...), not %s", describe(e))
		return
	}
	// Any error reported from here on leaves the entry out.
	before := len(p.probs)
	p.hostBuf = p.fieldsInto(p.hostBuf, e, "host", hostKeys)
	fs := p.hostBuf
	get := func(key string) (field, bool) {
		for _, f := range fs {
			if f.key == key {
				return f, true
			}
		}
		return field{}, false
	}

	// Names.
	nf, has := get("name")
	if !has {
		if !hasKey(e, "name") { // else already reported (alias, tag)
			p.errf(e.line, "host entry has no name")
		}
		return
	}
	entry, good := p.scalar(nf, "name")
	if !good {
		return
	}
	names, isRange := []string{entry}, false
	if strings.IndexByte(entry, '[') >= 0 {
		var err error
		if names, isRange, err = expandRange(entry); err != nil {
			p.errf(nf.v.line, "host name: %v", err)
			return
		}
	}
	for _, n := range names {
		if !validName(n) {
			msg := fmt.Sprintf("host name %q is not valid: %s", n, nameRule)
			if strings.Contains(n, "[") {
				msg += "; ranges are numeric, like web[01-20]"
			}
			p.errf(nf.v.line, "%s", msg)
			return
		}
		if n == "all" {
			p.errf(nf.v.line, "host name \"all\" is reserved: the selector all means every host")
			return
		}
	}
	label := entry

	// Addresses.
	var addrs []netip.Addr
	var ports []uint16
	bf, has := get("bmc")
	if !has {
		if !hasKey(e, "bmc") {
			p.errf(e.line, "host %s has no bmc address", label)
		}
	} else if bv, good := p.scalar(bf, "bmc"); good {
		list, bmcRange, err := []string{bv}, false, error(nil)
		if strings.IndexByte(bv, '[') >= 0 {
			list, bmcRange, err = expandRange(bv)
		}
		switch {
		case err != nil:
			p.errf(bf.v.line, "bmc: %v", err)
		case isRange && !bmcRange:
			p.errf(bf.v.line, "name %q is a range of %d hosts but bmc %q is one address; write an address range of the same length, like 10.0.2.[1-%d]", entry, len(names), bv, len(names))
		case !isRange && bmcRange:
			p.errf(bf.v.line, "bmc %q is a range but name %q is a single host", bv, entry)
		case len(list) != len(names):
			p.errf(bf.v.line, "name %q has %d hosts but bmc %q has %d addresses; they must pair up one to one", entry, len(names), bv, len(list))
		default:
			addrs = make([]netip.Addr, 0, len(list))
			ports = make([]uint16, 0, len(list))
			for _, s := range list {
				a, port, msg := parseBMC(s)
				if msg != "" {
					p.errf(bf.v.line, "%s", msg)
					break
				}
				addrs = append(addrs, a)
				ports = append(ports, port)
			}
		}
	}

	// Groups.
	var groups []string
	if gf, has := get("groups"); has {
		if items, good := p.list(gf, "groups"); good {
			for _, it := range items {
				g := it.value
				if _, known := p.inv.Groups[g]; !known {
					msg := fmt.Sprintf("unknown group %q", g)
					if strings.HasPrefix(g, "@") {
						msg += " (list groups without the @)"
					} else if sg := suggest(g, p.groupOrder); sg != "" {
						msg += fmt.Sprintf(" (did you mean %q?)", sg)
					}
					msg += "; groups are declared under groups:"
					p.errf(it.line, "%s", msg)
					continue
				}
				if contains(groups, g) {
					p.errf(it.line, "group %q is listed twice", g)
					continue
				}
				groups = append(groups, g)
			}
		}
	}

	// Settings: defaults < groups in order < the entry.
	own := p.settingsFrom(fs, "host", true)
	if isRange {
		for _, id := range []struct{ key, v string }{{"guid", own.guid}, {"uuid", own.uuid}, {"serial", own.serial}} {
			if id.v != "" {
				p.errf(e.line, "expect.%s is one machine's identity: a range entry (%s) cannot carry it; give the host its own entry", id.key, entry)
			}
		}
	}
	eff := settings{}
	eff.merge(&p.defaults)
	nlabels := len(p.defaults.labels) + len(own.labels)
	for _, g := range groups {
		if gs := p.groups[g]; gs != nil {
			eff.merge(gs)
			nlabels += len(gs.labels)
		}
	}
	eff.merge(own)
	protocols := eff.protocols
	if protocols == nil {
		protocols = []string{ProtocolIPMI, ProtocolRedfish}
	}
	if eff.credentials == "" && !eff.badCredentials {
		p.errf(e.line, "host %s has no credentials: set credentials in defaults, in one of its groups, or on the host", label)
	}
	insecure := eff.insecure != nil && *eff.insecure
	if insecure && eff.fingerprint != "" {
		p.errf(e.line, "host %s has redfish.insecure: true and a pinned fingerprint; use one (insecure accepts any certificate)", label)
	}
	ipmiPort, redfishPort := eff.ipmiPort, eff.redfishPort
	if ipmiPort == 0 {
		ipmiPort = DefaultIPMIPort
	}
	if redfishPort == 0 {
		redfishPort = DefaultRedfishPort
	}
	// A port in bmc: only when it cannot be ambiguous.
	if len(ports) > 0 && ports[0] != 0 {
		kinds := map[string]bool{}
		for _, pr := range protocols {
			kinds[portKind(pr)] = true
		}
		switch {
		case len(kinds) > 1:
			p.errf(bf.v.line, "bmc %q has a port, but %s uses %s, so the port is ambiguous; set ipmi.port or redfish.port instead", bf.v.value, label, strings.Join(protocols, " and "))
		case kinds[ProtocolRedfish] && own.redfishPort != 0 && own.redfishPort != ports[0]:
			p.errf(bf.v.line, "bmc %q has port %d but redfish.port is %d; set the port once", bf.v.value, ports[0], own.redfishPort)
		case kinds[ProtocolIPMI] && own.ipmiPort != 0 && own.ipmiPort != ports[0]:
			p.errf(bf.v.line, "bmc %q has port %d but ipmi.port is %d; set the port once", bf.v.value, ports[0], own.ipmiPort)
		}
	}
	if len(p.probs) > before || len(addrs) != len(names) {
		return
	}

	var labels map[string]string
	if nlabels > 0 {
		labels = make(map[string]string, nlabels)
		layer := func(s *settings) {
			for _, kv := range s.labels {
				labels[kv.key] = kv.value
			}
		}
		layer(&p.defaults)
		for _, g := range groups {
			if gs := p.groups[g]; gs != nil {
				layer(gs)
			}
		}
		layer(own)
	}
	var delay time.Duration
	if eff.simDelay != nil {
		delay = *eff.simDelay
	}
	for i, name := range names {
		h := &Host{
			Name:        name,
			Addr:        addrs[i],
			IPMIPort:    ipmiPort,
			RedfishPort: redfishPort,
			Protocols:   protocols,
			Credentials: eff.credentials,
			Groups:      groups,
			Labels:      labels,
			CipherSuite: eff.cipherSuite,
			TLS:         TLS{Fingerprint: eff.fingerprint, Insecure: insecure},
			Expect:      Expect{GUID: eff.guid, UUID: eff.uuid, Serial: eff.serial, Power: eff.power},
			Sim:         Sim{Vendor: eff.simVendor, Scenarios: eff.simScen, Delay: delay},
			Pos:         Pos{File: p.file, Line: e.line},
			entry:       entry,
		}
		if ports[i] != 0 {
			if portKind(protocols[0]) == ProtocolRedfish {
				h.RedfishPort = ports[i]
			} else {
				h.IPMIPort = ports[i]
			}
		}
		if prev, dup := p.inv.byName[name]; dup {
			p.errf(e.line, "duplicate host name %q (first at line %d)", name, prev.Pos.Line)
			continue
		}
		if prev, dup := p.ipAt[h.Addr]; dup {
			p.errf(bf.v.line, "host %s has bmc %s, already used by %s (line %d); two hosts cannot share a BMC", name, h.Addr, prev.Name, prev.Pos.Line)
			continue
		}
		h.index = len(p.inv.Hosts)
		p.inv.Hosts = append(p.inv.Hosts, h)
		p.inv.byName[name] = h
		p.ipAt[h.Addr] = h
	}
}
