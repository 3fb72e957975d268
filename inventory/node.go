package inventory

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"

	"gopkg.in/yaml.v3"
)

// node is the YAML tree the validator walks. It holds only what the
// validator needs, so that two parsers can produce it: the fast subset
// parser (fastyaml.go) for the plain YAML people write in inventories, and
// yaml.v3 for everything else. A differential fuzz test keeps them equal.
type node struct {
	kind nodeKind
	// str is true for quoted and block scalars: such a value is always a
	// string, never null.
	str bool
	// flow is true for [..] and {..} collections.
	flow bool
	// tagged is true when the YAML had an explicit tag (!!str, !foo).
	tagged    bool
	line, col int
	value     string
	// content holds a sequence's items, or a mapping's keys and values
	// alternating.
	content []*node
}

type nodeKind uint8

const (
	scalarNode nodeKind = iota + 1
	mappingNode
	sequenceNode
	aliasNode
)

// isNull reports whether n is YAML's null: an empty or ~/null plain scalar.
func (n *node) isNull() bool {
	if n == nil {
		return true
	}
	if n.kind != scalarNode || n.str || n.tagged {
		return false
	}
	switch n.value {
	case "", "~", "null", "Null", "NULL":
		return true
	}
	return false
}

// syntaxError is a YAML syntax error with the line it was found on (0 when
// the parser did not say).
type syntaxError struct {
	line int
	msg  string
}

func (e *syntaxError) Error() string { return e.msg }

// decode parses data into a node tree. A nil node with a nil error is an
// empty document. Only the first document is read; a second one is an
// error, so that nothing in the file is silently ignored.
func decode(data []byte) (*node, error) {
	n, ok, bail := fastParse(data)
	if ok && !yamlV3Only {
		return n, nil
	}
	n, err := decodeYAML(data)
	var se *syntaxError
	if errors.As(err, &se) && bail > se.line && prefixParses(data, bail-1) && !prefixParses(data, bail) {
		// yaml.v3 often names the line where the enclosing construct
		// began (the start of the hosts list, for a bad indent on host
		// 1,500). When the text up to the line where the fast parser
		// stopped is fine and that line breaks it, that line is the one
		// to fix.
		se.line = bail
	}
	return n, err
}

// prefixParses reports whether the first n lines of data are valid YAML.
func prefixParses(data []byte, n int) bool {
	end := 0
	for i := 0; i < n; i++ {
		j := bytes.IndexByte(data[end:], '\n')
		if j < 0 {
			end = len(data)
			break
		}
		end += j + 1
	}
	_, err := decodeYAML(data[:end])
	return err == nil
}

// yamlV3Only makes decode skip the fast parser; benchmarks compare the two.
var yamlV3Only = false

var yamlLineErr = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// decodeYAML parses with yaml.v3. It recovers from a panic inside yaml.v3
// (the library has had input-dependent panics) and reports it as a syntax
// error, because nothing on any input may crash rmm.
func decodeYAML(data []byte) (doc *node, err error) {
	defer func() {
		if r := recover(); r != nil {
			doc, err = nil, &syntaxError{msg: fmt.Sprintf("the YAML parser failed on this file (%v)", r)}
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var y yaml.Node
	if err := dec.Decode(&y); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		return nil, yamlError(err)
	}
	var y2 yaml.Node
	if err := dec.Decode(&y2); err == nil {
		return nil, &syntaxError{line: y2.Line, msg: "a second YAML document (after ---) is not allowed; an inventory is one document"}
	} else if !errors.Is(err, io.EOF) {
		return nil, yamlError(err)
	}
	return fromYAML(&y, 0), nil
}

// yamlParserProblems are yaml.v3's parser (not scanner) errors. For these
// it reports the 0-based line where the construct started, so one is
// added; scanner errors are already 1-based.
var yamlParserProblems = map[string]bool{
	"did not find expected ',' or ']'":       true,
	"did not find expected ',' or '}'":       true,
	"did not find expected '-' indicator":    true,
	"did not find expected <document start>": true,
	"did not find expected <stream-start>":   true,
	"did not find expected key":              true,
	"did not find expected node content":     true,
	"found duplicate %TAG directive":         true,
	"found duplicate %YAML directive":        true,
	"found incompatible YAML document":       true,
	"found undefined tag handle":             true,
}

func yamlError(err error) error {
	msg := err.Error()
	if m := yamlLineErr.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		if yamlParserProblems[m[2]] {
			line++
		}
		return &syntaxError{line: line, msg: "yaml: " + m[2]}
	}
	return &syntaxError{msg: msg}
}

// maxDepth bounds recursion over the tree; no inventory nests deeper than
// a handful of levels.
const maxDepth = 64

// fromYAML converts a yaml.v3 tree. Aliases are kept as alias nodes (the
// validator rejects them) and never followed, so an alias bomb costs
// nothing.
func fromYAML(y *yaml.Node, depth int) *node {
	if y.Kind == yaml.DocumentNode {
		if len(y.Content) == 0 {
			return nil
		}
		return fromYAML(y.Content[0], depth)
	}
	n := &node{
		line:   y.Line,
		col:    y.Column,
		value:  y.Value,
		str:    y.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle|yaml.LiteralStyle|yaml.FoldedStyle) != 0,
		flow:   y.Style&yaml.FlowStyle != 0,
		tagged: y.Style&yaml.TaggedStyle != 0,
	}
	switch y.Kind {
	case yaml.ScalarNode:
		n.kind = scalarNode
	case yaml.MappingNode:
		n.kind = mappingNode
	case yaml.SequenceNode:
		n.kind = sequenceNode
	default:
		n.kind = aliasNode
		return n
	}
	if depth >= maxDepth {
		// Deeper than any valid inventory: keep the node, drop its
		// content; the validator reports the wrong shape higher up.
		return n
	}
	if len(y.Content) > 0 {
		n.content = make([]*node, len(y.Content))
		for i, c := range y.Content {
			n.content[i] = fromYAML(c, depth+1)
		}
	}
	return n
}
