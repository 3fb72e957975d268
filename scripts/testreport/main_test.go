package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// events renders go test -json lines.
func events(t *testing.T, es ...event) string {
	t.Helper()
	var b strings.Builder
	for _, e := range es {
		j, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		b.Write(j)
		b.WriteByte('\n')
	}
	return b.String()
}

const pkg = "github.com/rmm-project/rmm/interop"

func TestReportCounts(t *testing.T) {
	tests := []struct {
		name    string
		in      []event
		want    stats
		printed []string
	}{
		{
			name: "interop checks, fault cases and the DNS count",
			in: []event{
				{Action: "pass", Package: pkg, Test: "TestInteropIPMISim/power"},
				{Action: "pass", Package: pkg, Test: "TestInteropIPMISim/sel"},
				{Action: "skip", Package: pkg, Test: "TestInteropIPMISim/console"},
				{Action: "pass", Package: pkg, Test: "TestInteropIPMISim"},
				{Action: "pass", Package: pkg, Test: "TestFaultFleet/dead"},
				{Action: "pass", Package: pkg, Test: "TestFaultFleet/slow"},
				{Action: "fail", Package: pkg, Test: "TestFaultFleet/garbage"},
				{Action: "fail", Package: pkg, Test: "TestFaultFleet"},
				{Action: "output", Package: pkg, Test: "TestNoDNS", Output: "    nodns_test.go:1: rmm-report: dns-queries=0\n"},
				{Action: "pass", Package: pkg, Test: "TestNoDNS"},
				{Action: "fail", Package: pkg},
			},
			want:    stats{ok: false, interop: 3, interopSkip: 1, faults: 2, dns: "0"},
			printed: []string{"interop checks passed: 3 (skipped: 1)", "fault cases passed: 2", "DNS queries seen by the canary resolver: 0", "FAILED:"},
		},
		{
			name: "a skip is listed with its reason",
			in: []event{
				{Action: "output", Package: pkg, Test: "TestTLS/insecure", Output: "    tls_test.go:9: KNOWN BUG: something\n"},
				{Action: "skip", Package: pkg, Test: "TestTLS/insecure"},
				{Action: "pass", Package: pkg},
			},
			want:    stats{ok: true},
			printed: []string{"SKIPPED", "TestTLS/insecure: tls_test.go:9: KNOWN BUG: something", "did not report"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			got := report(strings.NewReader(events(t, tt.in...)), &out)
			if got != tt.want {
				t.Errorf("stats %+v, want %+v", got, tt.want)
			}
			for _, p := range tt.printed {
				if !strings.Contains(out.String(), p) {
					t.Errorf("summary lacks %q:\n%s", p, out.String())
				}
			}
		})
	}
}

func TestTotals(t *testing.T) {
	var out bytes.Buffer
	totals(&out, stats{ok: true, interop: 12, interopSkip: 1, faults: 20, dns: "0"}, 7, false, "0")
	for _, want := range []string{"DNS queries by rmm:     0", "fault cases passed:     20", "fuzz targets:           7, not run", "interop checks passed:  12 (skipped: 1)", "PASS"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("totals lack %q:\n%s", want, out.String())
		}
	}
	out.Reset()
	totals(&out, stats{}, 7, true, "10s")
	for _, want := range []string{"not reported", "7, run 10s each", "FAIL"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("totals lack %q:\n%s", want, out.String())
		}
	}
}

func TestDeadlineFlake(t *testing.T) {
	tests := []struct {
		out  string
		want bool
	}{
		{"fuzz: elapsed: 10s, execs: 143979\n--- FAIL: FuzzX (10.07s)\n    context deadline exceeded\nFAIL\n", true},
		{"--- FAIL: FuzzX (0.2s)\n    x_test.go:12: got 1 want 2\n    Failing input written to testdata/fuzz/FuzzX/abc\n", false},
		{"--- FAIL: FuzzX\n    panic: index out of range\n    context deadline exceeded\n", false},
		{"--- FAIL: FuzzX\n    x_test.go:40: boom\ncontext deadline exceeded\n", false},
		{"build failed", false},
	}
	for _, tt := range tests {
		if got := deadlineFlake([]byte(tt.out)); got != tt.want {
			t.Errorf("deadlineFlake(%q) = %v, want %v", tt.out, got, tt.want)
		}
	}
}
