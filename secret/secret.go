// Package secret holds credentials in a type that does not print itself.
//
// A BMC password travels from the inventory (environment, file, command) to a
// protocol client. On the way it must never reach a log line, an error, JSON
// output or a child's argv. Value makes the accidental paths safe: fmt, %v,
// %+v, %#v, JSON and text marshalling all show a placeholder, and the real
// text comes out only through Reveal, which is easy to grep for.
package secret

import (
	"bytes"
	"io"
	"sync"
)

// Redacted is what a Value prints instead of its content.
const Redacted = "[redacted]"

// Value is a secret string (a BMC password).
type Value struct{ s string }

// New wraps s. The caller should drop its own copy.
func New(s string) Value { return Value{s: s} }

// Reveal returns the secret text. Call it only where a protocol needs the
// bytes (RAKP, an HTTP login body, a child's environment).
func (v Value) Reveal() string { return v.s }

// IsZero reports whether the secret is empty.
func (v Value) IsZero() bool { return v.s == "" }

// String implements fmt.Stringer without showing the secret.
func (v Value) String() string { return Redacted }

// GoString implements fmt.GoStringer without showing the secret.
func (v Value) GoString() string { return Redacted }

// MarshalText keeps the secret out of JSON, YAML and text encodings.
func (v Value) MarshalText() ([]byte, error) { return []byte(Redacted), nil }

// Scrubber is an io.Writer that replaces every registered secret with
// Redacted before passing bytes on. It is the last line of defence on
// stdout, stderr and log files: code should never write a secret, and if it
// does, the scrubber keeps it off the screen.
//
// Secrets split across two Write calls are caught by holding back the tail of
// each write that could be the start of a secret, until the next write (or
// Flush) decides.
type Scrubber struct {
	mu      sync.Mutex
	w       io.Writer
	secrets [][]byte
	pending []byte
}

// NewScrubber returns a Scrubber writing to w.
func NewScrubber(w io.Writer) *Scrubber { return &Scrubber{w: w} }

// Add registers a secret to scrub. Empty and very short secrets (under 3
// bytes) are ignored: scrubbing them would mangle ordinary output and they
// protect nothing.
func (s *Scrubber) Add(v Value) {
	if len(v.s) < 3 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, have := range s.secrets {
		if string(have) == v.s {
			return
		}
	}
	s.secrets = append(s.secrets, []byte(v.s))
}

// Write scrubs p and writes it on. It reports len(p) on success so callers
// see a normal writer.
func (s *Scrubber) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.secrets) == 0 && len(s.pending) == 0 {
		_, err := s.w.Write(p)
		return len(p), err
	}
	buf := append(s.pending, p...)
	s.pending = nil
	for _, sec := range s.secrets {
		buf = bytes.ReplaceAll(buf, sec, []byte(Redacted))
	}
	// Hold back a tail that is a proper prefix of some secret.
	hold := 0
	for _, sec := range s.secrets {
		for n := min(len(sec)-1, len(buf)); n > hold; n-- {
			if bytes.HasSuffix(buf, sec[:n]) {
				hold = n
				break
			}
		}
	}
	if hold > 0 {
		s.pending = append([]byte(nil), buf[len(buf)-hold:]...)
		buf = buf[:len(buf)-hold]
	}
	_, err := s.w.Write(buf)
	return len(p), err
}

// Flush writes any held-back bytes. Call it before the program exits.
func (s *Scrubber) Flush() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.pending) == 0 {
		return nil
	}
	_, err := s.w.Write(s.pending)
	s.pending = nil
	return err
}

// Scrubbers is a set of Scrubber writers that share one list of secrets:
// registering a password once protects stdout, stderr and log files alike.
type Scrubbers struct {
	mu  sync.Mutex
	all []*Scrubber
	sec []Value
}

// Wrap returns a Scrubber over w that knows every secret added so far and
// every secret added later.
func (s *Scrubbers) Wrap(w io.Writer) *Scrubber {
	s.mu.Lock()
	defer s.mu.Unlock()
	sc := NewScrubber(w)
	for _, v := range s.sec {
		sc.Add(v)
	}
	s.all = append(s.all, sc)
	return sc
}

// Add registers a secret with every wrapped writer.
func (s *Scrubbers) Add(v Value) {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sec = append(s.sec, v)
	for _, sc := range s.all {
		sc.Add(v)
	}
}

// Flush flushes every wrapped writer.
func (s *Scrubbers) Flush() {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, sc := range s.all {
		_ = sc.Flush()
	}
}
