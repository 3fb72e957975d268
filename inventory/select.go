package inventory

import (
	"errors"
	"fmt"
	"path"
	"sort"
	"strings"
)

// Select returns the hosts a selector names, in inventory order, each once.
// Every command takes its hosts through here, so they all understand the
// same language.
//
// Each argument is a comma list of terms; the arguments and their terms
// combine into one selection: the hosts any include term names, minus the
// hosts any exclusion names. A selection of only exclusions starts from all.
// Exclusions are global on purpose: "@db !db3" must never mean "every host
// but db3".
//
// Terms:
//
//	all             every host
//	db1             a host name
//	db[01-12]       a numeric range (also db[1-3,7]); every member must exist
//	web* db?        a glob over host names
//	@db             a group
//	site=ams        hosts whose label has that value
//	role!=db        hosts whose label is missing or has another value
//	!term, -term    exclude what term names (-term only inside a list,
//	                where it cannot be mistaken for a flag)
//
// Nothing is ever silently skipped: an unknown name, a missing range member
// and a term that matches nothing are errors, with a suggestion for a near
// miss.
func (inv *Inventory) Select(args ...string) ([]*Host, error) {
	if len(args) == 0 {
		return nil, errors.New("no hosts given: name hosts, a group like @db, or all")
	}
	include := make([]bool, len(inv.Hosts))
	exclude := make([]bool, len(inv.Hosts))
	anyInclude := false
	for _, arg := range args {
		if strings.TrimSpace(arg) == "" {
			return nil, errors.New("an empty host selector was given")
		}
		for _, term := range splitTerms(arg) {
			if term == "" {
				return nil, fmt.Errorf("selector %q has an empty term (a doubled or trailing comma?)", arg)
			}
			set, t := include, term
			if t[0] == '!' || t[0] == '-' {
				set, t = exclude, t[1:]
				if t == "" {
					return nil, fmt.Errorf("%q excludes nothing: write the host, @group or label after it", term)
				}
			} else {
				anyInclude = true
			}
			if err := inv.mark(t, set); err != nil {
				return nil, err
			}
		}
	}
	var out []*Host
	for i, h := range inv.Hosts {
		if (include[i] || !anyInclude) && !exclude[i] {
			out = append(out, h)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s selects no host: the exclusions remove every host it names", strings.Join(args, " "))
	}
	return out, nil
}

// mark sets set[i] for every host term names, or says why it names none.
func (inv *Inventory) mark(t string, set []bool) error {
	switch {
	case t == "all":
		for i := range set {
			set[i] = true
		}
		return nil
	case t[0] == '@':
		return inv.markGroup(t, set)
	case strings.Contains(t, "="):
		return inv.markLabel(t, set)
	case strings.ContainsAny(t, "*?"):
		return inv.markGlob(t, t, set)
	case strings.Contains(t, "["):
		names, isRange, err := expandRange(t)
		if err != nil {
			return err
		}
		if !isRange {
			return inv.markGlob(t, t, set) // a character class: db[ab]
		}
		for _, n := range names {
			h, ok := inv.byName[n]
			if !ok {
				return fmt.Errorf("range %q includes %s, which is not in the inventory", t, n)
			}
			set[h.index] = true
		}
		return nil
	}
	h, ok := inv.byName[t]
	if !ok {
		return inv.unknownHost(t)
	}
	set[h.index] = true
	return nil
}

func (inv *Inventory) unknownHost(t string) error {
	msg := fmt.Sprintf("no host named %q", t)
	if _, isGroup := inv.Groups[t]; isGroup {
		return fmt.Errorf("%s; did you mean the group @%s?", msg, t)
	}
	names := make([]string, len(inv.Hosts))
	for i, h := range inv.Hosts {
		names[i] = h.Name
	}
	if s := suggest(t, names); s != "" {
		return fmt.Errorf("%s; did you mean %s?", msg, s)
	}
	return errors.New(msg)
}

func (inv *Inventory) groupNames() []string {
	names := make([]string, 0, len(inv.Groups))
	for n := range inv.Groups {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func (inv *Inventory) markGroup(t string, set []bool) error {
	g := t[1:]
	if _, ok := inv.Groups[g]; !ok {
		msg := fmt.Sprintf("no group named %q", t)
		if s := suggest(g, inv.groupNames()); s != "" {
			return fmt.Errorf("%s; did you mean @%s?", msg, s)
		}
		if _, isHost := inv.byName[g]; isHost {
			return fmt.Errorf("%s; %s is a host: write it without the @", msg, g)
		}
		return errors.New(msg)
	}
	found := false
	for _, h := range inv.Hosts {
		for _, hg := range h.Groups {
			if hg == g {
				set[h.index] = true
				found = true
				break
			}
		}
	}
	if !found {
		return fmt.Errorf("group %q has no hosts", t)
	}
	return nil
}

func (inv *Inventory) markLabel(t string, set []bool) error {
	key, val, _ := strings.Cut(t, "=")
	neg := strings.HasSuffix(key, "!")
	key = strings.TrimSuffix(key, "!")
	if key == "" {
		return fmt.Errorf("label selector %q has no label name (write it like site=ams)", t)
	}
	if val == "" {
		return fmt.Errorf("label selector %q has no value (write it like site=ams)", t)
	}
	found := false
	for _, h := range inv.Hosts {
		v, has := h.Labels[key]
		if (has && v == val) != neg {
			set[h.index] = true
			found = true
		}
	}
	if found {
		return nil
	}
	// Nothing matched: gather what exists, for the message.
	var keys, values []string
	seenKey, seenVal := map[string]bool{}, map[string]bool{}
	for _, h := range inv.Hosts {
		for k := range h.Labels {
			if !seenKey[k] {
				seenKey[k] = true
				keys = append(keys, k)
			}
		}
		if v, has := h.Labels[key]; has && !seenVal[v] {
			seenVal[v] = true
			values = append(values, v)
		}
	}
	if !seenKey[key] {
		sort.Strings(keys)
		msg := fmt.Sprintf("no host has a label %q", key)
		if s := suggest(key, keys); s != "" {
			return fmt.Errorf("%s; did you mean %s?", msg, s)
		}
		return errors.New(msg)
	}
	if neg {
		return fmt.Errorf("%q matches no host: every host has %s=%s", t, key, val)
	}
	sort.Strings(values)
	msg := fmt.Sprintf("no host has %s=%s", key, val)
	if s := suggest(val, values); s != "" {
		return fmt.Errorf("%s; did you mean %s=%s?", msg, key, s)
	}
	if len(values) > 10 {
		values = append(values[:10], "...")
	}
	return fmt.Errorf("%s (%s is one of: %s)", msg, key, strings.Join(values, ", "))
}

func (inv *Inventory) markGlob(t, pattern string, set []bool) error {
	if _, err := path.Match(pattern, ""); err != nil {
		return fmt.Errorf("bad pattern %q: %w", t, err)
	}
	found := false
	for _, h := range inv.Hosts {
		if ok, _ := path.Match(pattern, h.Name); ok {
			set[h.index] = true
			found = true
		}
	}
	if !found {
		return fmt.Errorf("%q matches no host", t)
	}
	return nil
}

// splitTerms splits a comma list, keeping commas inside brackets: the
// range db[1-3,7] is one term.
func splitTerms(s string) []string {
	var out []string
	depth, start := 0, 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '[':
			depth++
		case ']':
			if depth > 0 {
				depth--
			}
		case ',':
			if depth == 0 {
				out = append(out, s[start:i])
				start = i + 1
			}
		}
	}
	return append(out, s[start:])
}
