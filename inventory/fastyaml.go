package inventory

import "strings"

// fastParse parses the subset of YAML that inventories are written in:
// block mappings and sequences, one-line flow collections ([a, b],
// {k: v}), plain and simply quoted scalars, comments. It exists because
// yaml.v3 needs about 100-250 ms for a 10,000-host file on a modest
// machine, and every rmm command reads the inventory first.
//
// It is all or nothing: on anything outside the subset (anchors, tags,
// block scalars, multi-line scalars, tabs, non-ASCII, escapes, odd
// indentation, errors of any kind) it reports ok=false and decode falls
// back to yaml.v3, which also writes the error messages. When it succeeds
// its tree equals the one fromYAML builds from yaml.v3 (FuzzFastParse
// checks this on every input the fuzzer finds).
//
// bail is the line it stopped on, a hint for locating yaml.v3's errors.
func fastParse(data []byte) (doc *node, ok bool, bail int) {
	line := 1
	for _, b := range data {
		if b == '\n' {
			line++
		} else if b >= 0x7f || b < 0x20 {
			return nil, false, line
		}
	}
	p := &fastParser{}
	text := string(data)
	num := 0
	for len(text) > 0 {
		num++
		var line string
		if i := strings.IndexByte(text, '\n'); i >= 0 {
			line, text = text[:i], text[i+1:]
		} else {
			line, text = text, ""
		}
		indent := 0
		for indent < len(line) && line[indent] == ' ' {
			indent++
		}
		rest := strings.TrimRight(line[indent:], " ")
		if rest == "" || rest[0] == '#' {
			continue
		}
		if len(line) > 1000 || rest[0] == '%' || strings.HasPrefix(rest, "---") || strings.HasPrefix(rest, "...") {
			return nil, false, num
		}
		p.lines = append(p.lines, fline{num: num, indent: indent, text: rest})
	}
	if len(p.lines) == 0 {
		return nil, true, 0
	}
	p.nodes = make([]node, 0, 3*len(p.lines))
	n, ok := p.block(0)
	if !ok || p.i != len(p.lines) {
		return nil, false, p.lines[min(p.i, len(p.lines)-1)].num
	}
	return n, true, 0
}

// fline is one significant line: its number, indentation and text (without
// the indentation and trailing blanks; comments are still in it).
type fline struct {
	num    int
	indent int
	text   string
}

type fastParser struct {
	lines []fline
	i     int
	// nodes is a slab: one allocation for most of the tree.
	nodes []node
}

func (p *fastParser) newNode(kind nodeKind, line, col int) *node {
	if len(p.nodes) == cap(p.nodes) {
		p.nodes = make([]node, 0, 1024)
	}
	p.nodes = append(p.nodes, node{kind: kind, line: line, col: col})
	return &p.nodes[len(p.nodes)-1]
}

func isSeqItem(t string) bool { return t == "-" || strings.HasPrefix(t, "- ") }

// block parses the block collection starting at the current line.
func (p *fastParser) block(depth int) (*node, bool) {
	if depth > maxDepth/2 {
		return nil, false
	}
	l := p.lines[p.i]
	if isSeqItem(l.text) {
		return p.seq(l.indent, depth)
	}
	return p.mapping(l.indent, depth)
}

// mapping parses "key: value" lines at exactly indent.
func (p *fastParser) mapping(indent, depth int) (*node, bool) {
	first := p.lines[p.i]
	m := p.newNode(mappingNode, first.num, indent+1)
	m.content = make([]*node, 0, 8)
	for p.i < len(p.lines) {
		l := p.lines[p.i]
		if l.indent < indent {
			break
		}
		if l.indent > indent || isSeqItem(l.text) {
			return nil, false
		}
		key, rest, restOff, ok := splitKey(l.text)
		if !ok {
			return nil, false
		}
		k := p.newNode(scalarNode, l.num, indent+1)
		k.value = key
		p.i++
		var v *node
		if rest == "" {
			switch {
			case p.i < len(p.lines) && p.lines[p.i].indent > indent:
				if v, ok = p.block(depth + 1); !ok {
					return nil, false
				}
			case p.i < len(p.lines) && p.lines[p.i].indent == indent && isSeqItem(p.lines[p.i].text):
				if v, ok = p.seq(indent, depth+1); !ok {
					return nil, false
				}
			default:
				// yaml.v3 places an implicit null right after the colon.
				v = p.newNode(scalarNode, l.num, indent+1+len(key)+1)
			}
		} else {
			if v, ok = p.inline(rest, l.num, indent+1+restOff, depth); !ok {
				return nil, false
			}
			if p.i < len(p.lines) && p.lines[p.i].indent > indent {
				return nil, false // a continuation line: multi-line scalar or an error
			}
		}
		m.content = append(m.content, k, v)
	}
	return m, true
}

// seq parses "- item" lines at exactly indent.
func (p *fastParser) seq(indent, depth int) (*node, bool) {
	first := p.lines[p.i]
	s := p.newNode(sequenceNode, first.num, indent+1)
	for p.i < len(p.lines) {
		l := &p.lines[p.i]
		if l.indent < indent || (l.indent == indent && !isSeqItem(l.text)) {
			break
		}
		if l.indent > indent || l.text == "-" {
			return nil, false
		}
		rest := l.text[2:]
		off := 2
		for off < len(l.text) && l.text[off] == ' ' {
			off++
		}
		rest = l.text[off:]
		if rest == "" || rest[0] == '#' || isSeqItem(rest) {
			return nil, false
		}
		var item *node
		var ok bool
		if _, _, _, isKey := splitKey(rest); isKey {
			// "- key: value" starts a mapping whose keys line up after
			// the dash.
			l.indent += off
			l.text = rest
			if item, ok = p.mapping(l.indent, depth+1); !ok {
				return nil, false
			}
		} else {
			num := l.num
			p.i++
			if item, ok = p.inline(rest, num, indent+1+off, depth); !ok {
				return nil, false
			}
			if p.i < len(p.lines) && p.lines[p.i].indent > indent {
				return nil, false
			}
		}
		s.content = append(s.content, item)
	}
	return s, true
}

func isKeyChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '/' || c == '-'
}

// splitKey splits "key: rest" or "key:" where key is a simple plain scalar.
// restOff is rest's offset in t. A trailing comment after "key:" is dropped.
func splitKey(t string) (key, rest string, restOff int, ok bool) {
	if t == "" || t[0] == '-' || !isKeyChar(t[0]) {
		return "", "", 0, false
	}
	for j := 0; j < len(t); j++ {
		c := t[j]
		if c == ':' {
			if j+1 == len(t) {
				return t[:j], "", 0, true
			}
			if t[j+1] != ' ' {
				return "", "", 0, false
			}
			off := j + 1
			for off < len(t) && t[off] == ' ' {
				off++
			}
			if off < len(t) && t[off] == '#' {
				return t[:j], "", 0, true
			}
			return t[:j], t[off:], off, true
		}
		if !isKeyChar(c) {
			return "", "", 0, false
		}
	}
	return "", "", 0, false
}

// isIndicator reports whether a plain scalar may not start with c.
func isIndicator(c byte) bool {
	return strings.IndexByte("-?:,[]{}#&*!|>'\"%@`", c) >= 0
}

// inline parses a value that sits on its line after "key: " or "- ".
func (p *fastParser) inline(t string, line, col, depth int) (*node, bool) {
	var n *node
	var end int
	var ok bool
	switch t[0] {
	case '[', '{':
		n, end, ok = p.flow(t, 0, line, col, depth+1)
	case '"', '\'':
		n, end, ok = p.quoted(t, 0, line, col)
	default:
		if isIndicator(t[0]) {
			return nil, false
		}
		end = len(t)
		if i := strings.Index(t, " #"); i >= 0 {
			end = i
		}
		v := strings.TrimRight(t[:end], " ")
		if strings.Contains(v, ": ") || strings.HasSuffix(v, ":") {
			return nil, false
		}
		n = p.newNode(scalarNode, line, col)
		n.value = v
		return n, true
	}
	if !ok || !onlyComment(t[end:]) {
		return nil, false
	}
	return n, true
}

// onlyComment reports whether t is blank or blanks then a comment.
func onlyComment(t string) bool {
	s := strings.TrimLeft(t, " ")
	return s == "" || (s[0] == '#' && len(s) < len(t))
}

// quoted parses a one-line quoted scalar at t[i]; escapes make it bail.
func (p *fastParser) quoted(t string, i, line, col int) (*node, int, bool) {
	q := t[i]
	var b strings.Builder
	j := i + 1
	for {
		if j >= len(t) {
			return nil, 0, false
		}
		c := t[j]
		if q == '"' && c == '\\' {
			return nil, 0, false
		}
		if c == q {
			if q == '\'' && j+1 < len(t) && t[j+1] == '\'' {
				b.WriteByte('\'')
				j += 2
				continue
			}
			break
		}
		b.WriteByte(c)
		j++
	}
	n := p.newNode(scalarNode, line, col)
	n.value = b.String()
	n.str = true
	return n, j + 1, true
}

func isFlowIndicator(c byte) bool { return c == ',' || c == '[' || c == ']' || c == '{' || c == '}' }

func skipSpaces(t string, i int) int {
	for i < len(t) && t[i] == ' ' {
		i++
	}
	return i
}

// flowNode parses one node inside a flow collection at t[i].
func (p *fastParser) flowNode(t string, i, line, col, depth int) (*node, int, bool) {
	if i >= len(t) {
		return nil, 0, false
	}
	switch t[i] {
	case '[', '{':
		return p.flow(t, i, line, col, depth+1)
	case '"', '\'':
		return p.quoted(t, i, line, col+i)
	}
	if isIndicator(t[i]) {
		return nil, 0, false
	}
	j := i
	for j < len(t) {
		c := t[j]
		if isFlowIndicator(c) {
			break
		}
		if c == ':' && (j+1 == len(t) || t[j+1] == ' ' || isFlowIndicator(t[j+1])) {
			break
		}
		if c == '#' && t[j-1] == ' ' {
			return nil, 0, false
		}
		if c == '?' {
			// yaml.v3 ends a flow plain scalar at '?' (then fails); a
			// '?' in a flow value is left to it.
			return nil, 0, false
		}
		j++
	}
	v := strings.TrimRight(t[i:j], " ")
	if v == "" {
		return nil, 0, false
	}
	n := p.newNode(scalarNode, line, col+i)
	n.value = v
	return n, j, true
}

// flow parses a one-line [..] or {..} at t[i]. col is t[0]'s column.
func (p *fastParser) flow(t string, i, line, col, depth int) (*node, int, bool) {
	if depth > maxDepth/2 {
		return nil, 0, false
	}
	open := t[i]
	closing := byte(']')
	kind := sequenceNode
	if open == '{' {
		closing, kind = '}', mappingNode
	}
	n := p.newNode(kind, line, col+i)
	n.flow = true
	n.content = make([]*node, 0, 4)
	j := skipSpaces(t, i+1)
	if j < len(t) && t[j] == closing {
		return n, j + 1, true
	}
	for {
		if kind == mappingNode {
			if j >= len(t) || !isKeyChar(t[j]) || t[j] == '-' {
				return nil, 0, false
			}
			k, end, ok := p.flowNode(t, j, line, col, depth)
			if !ok || end+1 >= len(t) || t[end] != ':' || t[end+1] != ' ' {
				return nil, 0, false
			}
			for x := 0; x < len(k.value); x++ {
				if !isKeyChar(k.value[x]) {
					return nil, 0, false
				}
			}
			j = skipSpaces(t, end+1)
			if j >= len(t) || t[j] == ',' || t[j] == closing {
				return nil, 0, false // {k: } is null in YAML; rare, leave it to yaml.v3
			}
			v, end2, ok := p.flowNode(t, j, line, col, depth)
			if !ok {
				return nil, 0, false
			}
			n.content = append(n.content, k, v)
			j = end2
		} else {
			v, end, ok := p.flowNode(t, j, line, col, depth)
			if !ok {
				return nil, 0, false
			}
			if end < len(t) && t[end] == ':' {
				return nil, 0, false // [k: v] is a one-pair mapping in YAML
			}
			n.content = append(n.content, v)
			j = end
		}
		j = skipSpaces(t, j)
		if j >= len(t) {
			return nil, 0, false
		}
		switch t[j] {
		case closing:
			return n, j + 1, true
		case ',':
			j = skipSpaces(t, j+1)
			if j >= len(t) || t[j] == closing || t[j] == ',' {
				return nil, 0, false
			}
		default:
			return nil, 0, false
		}
	}
}
