package secret

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

func TestValueNeverPrints(t *testing.T) {
	v := New("hunter2-pa55")
	s := struct {
		User     string
		Password Value
	}{"admin", v}
	for _, format := range []string{"%v", "%+v", "%#v", "%s"} {
		if out := fmt.Sprintf(format, s); strings.Contains(out, "hunter2") {
			t.Errorf("%s printed the secret: %s", format, out)
		}
	}
	b, err := json.Marshal(s)
	if err != nil || strings.Contains(string(b), "hunter2") || !strings.Contains(string(b), Redacted) {
		t.Errorf("json: %s, %v", b, err)
	}
	if v.Reveal() != "hunter2-pa55" || v.IsZero() || !New("").IsZero() {
		t.Error("Reveal/IsZero")
	}
}

func TestScrubber(t *testing.T) {
	tests := []struct {
		name   string
		writes []string
		want   string
	}{
		{"whole", []string{"pw is hunter2-pa55 ok\n"}, "pw is [redacted] ok\n"},
		{"split across writes", []string{"pw is hunt", "er2-pa", "55 ok\n"}, "pw is [redacted] ok\n"},
		{"prefix that is not the secret", []string{"hunter", " gatherer\n"}, "hunter gatherer\n"},
		{"ends in a prefix, then flush", []string{"x hunter2"}, "x hunter2"},
		{"twice in one write", []string{"hunter2-pa55/hunter2-pa55"}, "[redacted]/[redacted]"},
		{"nothing to hide", []string{"plain text\n"}, "plain text\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			sc := NewScrubber(&out)
			sc.Add(New("hunter2-pa55"))
			sc.Add(New("ab")) // too short to scrub: would mangle output
			for _, w := range tt.writes {
				n, err := sc.Write([]byte(w))
				if err != nil || n != len(w) {
					t.Fatalf("Write = %d, %v", n, err)
				}
			}
			if err := sc.Flush(); err != nil {
				t.Fatal(err)
			}
			if out.String() != tt.want {
				t.Errorf("got %q, want %q", out.String(), tt.want)
			}
		})
	}
}

// A secret registered after the writers were made protects them all.
func TestScrubbersShareSecrets(t *testing.T) {
	var a, b bytes.Buffer
	var set Scrubbers
	wa, wb := set.Wrap(&a), set.Wrap(&b)
	set.Add(New("s3cr3t-value"))
	wc := set.Wrap(&b)
	fmt.Fprint(wa, "a: s3cr3t-value\n")
	fmt.Fprint(wb, "b: s3cr3t-value\n")
	fmt.Fprint(wc, "c: s3cr3t-value\n")
	set.Flush()
	if strings.Contains(a.String()+b.String(), "s3cr3t") {
		t.Fatalf("secret leaked: %q %q", a.String(), b.String())
	}
	if strings.Count(a.String()+b.String(), Redacted) != 3 {
		t.Fatalf("got %q %q", a.String(), b.String())
	}
}
