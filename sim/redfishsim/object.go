package redfishsim

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

// object is a JSON object that keeps its members in the order the vendor
// wrote them. The simulator edits a few top-level members of captured
// resources (PowerState, Members, ...) and must not reorder the rest: some
// clients and most humans reading a capture diff expect the vendor's order.
type object []member

type member struct {
	Key string
	Val json.RawMessage
}

// parseObject splits a JSON object into its top-level members. Nested
// values stay raw.
func parseObject(b []byte) (object, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, errors.New("not a JSON object")
	}
	var o object
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		key, ok := tok.(string)
		if !ok {
			return nil, fmt.Errorf("object key is %T", tok)
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, err
		}
		o = append(o, member{Key: key, Val: raw})
	}
	if tok, err := dec.Token(); err != nil || tok != json.Delim('}') {
		return nil, errors.New("unterminated JSON object")
	}
	if _, err := dec.Token(); err == nil {
		return nil, errors.New("data after the JSON object")
	}
	return o, nil
}

// clone returns a copy that can be edited without touching o.
func (o object) clone() object { return append(object(nil), o...) }

// get returns the raw value of key, nil when absent.
func (o object) get(key string) json.RawMessage {
	for _, m := range o {
		if m.Key == key {
			return m.Val
		}
	}
	return nil
}

// getString returns key's value when it is a JSON string.
func (o object) getString(key string) string {
	var s string
	if raw := o.get(key); raw != nil {
		_ = json.Unmarshal(raw, &s)
	}
	return s
}

// set replaces key's value in place, or appends it.
func (o *object) set(key string, v any) {
	raw, err := json.Marshal(v)
	if err != nil { // only the simulator's own values get here
		panic(fmt.Sprintf("redfishsim: marshal %s: %v", key, err))
	}
	for i := range *o {
		if (*o)[i].Key == key {
			(*o)[i].Val = raw
			return
		}
	}
	*o = append(*o, member{Key: key, Val: raw})
}

// del removes key.
func (o *object) del(key string) {
	out := (*o)[:0]
	for _, m := range *o {
		if m.Key != key {
			out = append(out, m)
		}
	}
	*o = out
}

// MarshalJSON writes the members in order.
func (o object) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, m := range o {
		if i > 0 {
			b.WriteByte(',')
		}
		k, _ := json.Marshal(m.Key)
		b.Write(k)
		b.WriteByte(':')
		if len(m.Val) == 0 {
			b.WriteString("null")
		} else {
			b.Write(m.Val)
		}
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// pretty renders o indented like the vendors' own responses.
func (o object) pretty() []byte {
	raw, _ := o.MarshalJSON()
	var b bytes.Buffer
	if err := json.Indent(&b, raw, "", "    "); err != nil {
		return raw
	}
	return b.Bytes()
}
