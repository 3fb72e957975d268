package inventory

import (
	"fmt"
	"strconv"
	"strings"
)

// maxExpand bounds what one range may expand to, in the inventory and in
// selectors, so a typo like db[1-999999999] is an error, not an hour of
// work.
const maxExpand = 100000

// expandRange expands the numeric ranges in s, like pdsh and clustershell:
// "db[01-03]" gives db01 db02 db03, "db[1-3,7]" gives db1 db2 db3 db7, and
// "r[1-2]n[1-2]" gives r1n1 r1n2 r2n1 r2n2. A lower bound with a leading
// zero sets the width. A bracket whose content is not a numeric list is
// kept as text, so "[fd00::1]:623" passes through. isRange reports whether
// s had any range.
func expandRange(s string) (out []string, isRange bool, err error) {
	type part struct {
		text  string
		items []string // nil for text
	}
	var parts []part
	total := 1
	lit := 0 // start of pending literal text
	for i := 0; i < len(s); i++ {
		if s[i] != '[' {
			continue
		}
		j := strings.IndexByte(s[i:], ']')
		if j < 0 {
			break
		}
		j += i
		content := s[i+1 : j]
		if !isRangeList(content) {
			continue
		}
		items, err := rangeItems(content)
		if err != nil {
			return nil, true, fmt.Errorf("bad range %q: %w", s, err)
		}
		total *= len(items)
		if total > maxExpand {
			return nil, true, fmt.Errorf("range %q expands to more than %d names", s, maxExpand)
		}
		parts = append(parts, part{text: s[lit:i]}, part{items: items})
		lit = j + 1
		i = j
	}
	if len(parts) == 0 {
		return []string{s}, false, nil
	}
	parts = append(parts, part{text: s[lit:]})
	out = []string{""}
	for _, p := range parts {
		if p.items == nil {
			for k := range out {
				out[k] += p.text
			}
			continue
		}
		next := make([]string, 0, len(out)*len(p.items))
		for _, o := range out {
			for _, it := range p.items {
				next = append(next, o+it)
			}
		}
		out = next
	}
	return out, true, nil
}

// isRangeList reports whether c looks like a numeric range list (digits,
// '-' and ','), which expandRange then parses or rejects.
func isRangeList(c string) bool {
	if c == "" || c[0] < '0' || c[0] > '9' {
		return false
	}
	for i := 0; i < len(c); i++ {
		if !(c[i] >= '0' && c[i] <= '9' || c[i] == '-' || c[i] == ',') {
			return false
		}
	}
	return true
}

// rangeItems expands "01-03,7" to 01 02 03 7.
func rangeItems(c string) ([]string, error) {
	var out []string
	for _, r := range strings.Split(c, ",") {
		lo, hi, isSpan := strings.Cut(r, "-")
		if !isSpan {
			hi = lo
		}
		if !allDigits(lo) || !allDigits(hi) {
			return nil, fmt.Errorf("%q is not a number or a span like 1-12", r)
		}
		if len(lo) > 9 || len(hi) > 9 {
			return nil, fmt.Errorf("%q has numbers that are too long", r)
		}
		a, _ := strconv.Atoi(lo)
		b, _ := strconv.Atoi(hi)
		if a > b {
			return nil, fmt.Errorf("%s-%s counts down; write the smaller number first", lo, hi)
		}
		if len(out)+b-a+1 > maxExpand {
			return nil, fmt.Errorf("it expands to more than %d names", maxExpand)
		}
		width := 0
		if len(lo) > 1 && lo[0] == '0' {
			width = len(lo)
		}
		for v := a; v <= b; v++ {
			out = append(out, fmt.Sprintf("%0*d", width, v))
		}
	}
	return out, nil
}

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
