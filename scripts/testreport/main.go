// Command testreport turns `go test -json` output into the summary `make
// test` prints at the end: packages passed and failed, every skipped test
// with its reason (a skip is loud, never silent), the interop checks and
// fault cases that ran, the DNS queries the no-DNS proof counted, and a short
// run of every fuzz target.
//
// Tests report numbers by logging lines of the form
//
//	rmm-report: <key>=<value>
//
// (for example "rmm-report: dns-queries=0"); the last value per key wins.
//
// It ends with the totals CI cares about, in one block: DNS queries the
// no-DNS proof counted (must be 0), fault cases passed, fuzz targets, and
// interop checks passed against independent implementations.
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"sort"
	"strings"
	"time"
)

type event struct {
	Action  string
	Package string
	Test    string
	Output  string
	Elapsed float64
}

type testKey struct{ pkg, test string }

func main() {
	fuzzTime := flag.String("fuzztime", "10s", "how long to run each fuzz target (0 to skip running them; they are still counted)")
	fuzzOnly := flag.Bool("fuzz-only", false, "only run the fuzz targets")
	flag.Parse()

	ok := true
	var st stats
	if !*fuzzOnly {
		if flag.NArg() != 1 {
			fmt.Fprintln(os.Stderr, "usage: testreport [-fuzztime D] test.json")
			os.Exit(2)
		}
		f, err := os.Open(flag.Arg(0))
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		st = report(f, os.Stdout)
		ok = st.ok
		f.Close()
	}
	targets, err := fuzzTargets()
	if err != nil {
		fmt.Fprintf(os.Stdout, "fuzz: listing targets: %v\n", err)
		ok = false
	}
	run := *fuzzTime != "0" && *fuzzTime != "0s"
	if run && !fuzz(targets, *fuzzTime, os.Stdout) {
		ok = false
	}
	if !*fuzzOnly {
		totals(os.Stdout, st, len(targets), run, *fuzzTime)
	}
	if !ok {
		os.Exit(1)
	}
}

// stats is what the summary's totals need from the test run.
type stats struct {
	ok                   bool
	interop, interopSkip int
	faults               int
	dns                  string // "" when the no-DNS proof did not report
}

// totals prints the closing block: the four numbers CI reads first.
func totals(w io.Writer, st stats, fuzzTargets int, ran bool, fuzzTime string) {
	fmt.Fprintln(w, "\n== totals")
	dns := st.dns
	if dns == "" {
		dns = "not reported (the no-DNS proof did not run: not root, or skipped)"
	}
	fmt.Fprintf(w, "  DNS queries by rmm:     %s\n", dns)
	fmt.Fprintf(w, "  fault cases passed:     %d\n", st.faults)
	how := "not run (-fuzztime 0)"
	if ran {
		how = "run " + fuzzTime + " each"
	}
	fmt.Fprintf(w, "  fuzz targets:           %d, %s\n", fuzzTargets, how)
	fmt.Fprintf(w, "  interop checks passed:  %d (skipped: %d)\n", st.interop, st.interopSkip)
	result := "PASS"
	if !st.ok {
		result = "FAIL"
	}
	fmt.Fprintf(w, "  tests:                  %s\n", result)
}

var reportLine = regexp.MustCompile(`rmm-report: ([a-z0-9_-]+)=(\S+)`)

func report(r io.Reader, w io.Writer) stats {
	results := map[testKey]string{}
	output := map[testKey][]string{}
	pkgResult := map[string]string{}
	pkgElapsed := map[string]float64{}
	values := map[string]string{}
	var order []testKey

	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var e event
		if json.Unmarshal(sc.Bytes(), &e) != nil {
			continue
		}
		k := testKey{e.Package, e.Test}
		switch e.Action {
		case "output":
			if m := reportLine.FindStringSubmatch(e.Output); m != nil {
				values[m[1]] = m[2]
			}
			if e.Test != "" {
				output[k] = append(output[k], e.Output)
			} else if strings.HasPrefix(e.Output, "FAIL") || strings.Contains(e.Output, "panic:") || strings.Contains(e.Output, "[build failed]") {
				output[k] = append(output[k], e.Output)
			}
		case "pass", "fail", "skip":
			if e.Test == "" {
				pkgResult[e.Package] = e.Action
				pkgElapsed[e.Package] = e.Elapsed
				continue
			}
			if _, seen := results[k]; !seen {
				order = append(order, k)
			}
			results[k] = e.Action
		}
	}

	var pkgs []string
	for p := range pkgResult {
		pkgs = append(pkgs, p)
	}
	sort.Strings(pkgs)
	passed, failed, skipped := 0, 0, 0
	interop, interopSkipped, faults := 0, 0, 0
	var skips, fails []testKey
	for _, k := range order {
		switch results[k] {
		case "pass":
			passed++
		case "fail":
			failed++
			fails = append(fails, k)
		case "skip":
			skipped++
			skips = append(skips, k)
		}
		name := strings.ToLower(k.test)
		top := strings.SplitN(name, "/", 2)[0]
		if strings.Contains(top, "interop") {
			if results[k] == "pass" {
				interop++
			} else if results[k] == "skip" {
				interopSkipped++
			}
		}
		if strings.Contains(top, "fault") && strings.Contains(name, "/") && results[k] == "pass" {
			faults++
		}
	}

	fmt.Fprintln(w, "\n== test summary")
	for _, p := range pkgs {
		fmt.Fprintf(w, "  %-4s %-55s %6.1fs\n", pkgResult[p], strings.TrimPrefix(p, "github.com/rmm-project/rmm/"), pkgElapsed[p])
	}
	fmt.Fprintf(w, "tests: %d passed, %d failed, %d skipped\n", passed, failed, skipped)
	fmt.Fprintf(w, "interop checks passed: %d (skipped: %d)\n", interop, interopSkipped)
	fmt.Fprintf(w, "fault cases passed: %d\n", faults)
	if v, ok := values["dns-queries"]; ok {
		fmt.Fprintf(w, "DNS queries seen by the canary resolver: %s\n", v)
	} else {
		fmt.Fprintln(w, "DNS queries: the no-DNS proof did not report (did it run?)")
	}
	var keys []string
	for k := range values {
		if k != "dns-queries" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(w, "%s: %s\n", k, values[k])
	}
	if len(skips) > 0 {
		fmt.Fprintln(w, "\nSKIPPED (each with its reason):")
		for _, k := range skips {
			fmt.Fprintf(w, "  %s %s: %s\n", short(k.pkg), k.test, skipReason(output[k]))
		}
	}
	if len(fails) > 0 {
		fmt.Fprintln(w, "\nFAILED:")
		for _, k := range fails {
			fmt.Fprintf(w, "  %s %s\n", short(k.pkg), k.test)
		}
	}
	pkgFail := false
	for p, r := range pkgResult {
		if r == "fail" {
			pkgFail = true
			if o := output[testKey{p, ""}]; len(o) > 0 {
				fmt.Fprintf(w, "  %s: %s", short(p), strings.Join(o, ""))
			}
		}
	}
	return stats{ok: failed == 0 && !pkgFail, interop: interop, interopSkip: interopSkipped, faults: faults, dns: values["dns-queries"]}
}

// deadlineFlake reports whether a failed fuzz run is Go's coordinator
// deadline race rather than a finding: "context deadline exceeded", and no
// failing input, panic or test error.
func deadlineFlake(out []byte) bool {
	o := string(out)
	return strings.Contains(o, "context deadline exceeded") &&
		!strings.Contains(o, "Failing input written") && !strings.Contains(o, "panic:") &&
		!strings.Contains(o, "_test.go:")
}

func short(p string) string { return strings.TrimPrefix(p, "github.com/rmm-project/rmm/") }

func skipReason(lines []string) string {
	for i := len(lines) - 1; i >= 0; i-- {
		l := strings.TrimSpace(lines[i])
		if l == "" || strings.HasPrefix(l, "---") || strings.HasPrefix(l, "===") {
			continue
		}
		return l
	}
	return "(no reason given)"
}

// fuzzTarget is one Fuzz function and its package.
type fuzzTarget struct{ pkg, name string }

// fuzzTargets lists every Fuzz target in the module. A package that does
// not build is an error, but the targets of the others are still returned.
func fuzzTargets() ([]fuzzTarget, error) {
	cmd := exec.Command("go", "test", "-list", "^Fuzz", "./...")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		// Name the packages that failed, so the count's gap is explained.
		var failed []string
		for _, line := range strings.Split(string(out)+stderr.String(), "\n") {
			if strings.HasPrefix(line, "FAIL") || strings.Contains(line, "build failed") {
				failed = append(failed, strings.TrimSpace(line))
			}
		}
		err = fmt.Errorf("%w: %s", err, strings.Join(failed, "; "))
	}
	var targets []fuzzTarget
	var pending []string
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) == 1 && strings.HasPrefix(f[0], "Fuzz"):
			pending = append(pending, f[0])
		case len(f) >= 2 && f[0] == "ok":
			for _, n := range pending {
				targets = append(targets, fuzzTarget{f[1], n})
			}
			pending = nil
		}
	}
	return targets, err
}

// fuzz runs every target for d each.
func fuzz(targets []fuzzTarget, d string, w io.Writer) bool {
	fmt.Fprintf(w, "\n== fuzz targets: %d, %s each\n", len(targets), d)
	ok := true
	for _, t := range targets {
		start := time.Now()
		run := func() ([]byte, error) {
			// Minimising a new input may take a minute by default and looks
			// like a stall; a short bound keeps CI time predictable.
			cmd := exec.Command("go", "test", "-run", "^$", "-fuzz", "^"+t.name+"$", "-fuzztime", d, "-fuzzminimizetime", "2s", t.pkg)
			return cmd.CombinedOutput()
		}
		b, err := run()
		status := "ok"
		if err != nil && deadlineFlake(b) {
			// Go 1.26's fuzz coordinator can report its own -fuzztime
			// deadline as a failure (go.dev/issue/75804, fixed in Go 1.27):
			// no input written, nothing to reproduce. Run once more; a real
			// finding writes a failing input both times.
			fmt.Fprintf(w, "  note %-40s %s: 'context deadline exceeded' with no failing input (go.dev/issue/75804); running it again\n", short(t.pkg), t.name)
			b, err = run()
			if err != nil && deadlineFlake(b) {
				status = "flake"
				err = nil
			}
		}
		if err != nil {
			status = "FAIL"
			ok = false
		}
		fmt.Fprintf(w, "  %-4s %-40s %s (%.0fs)\n", status, short(t.pkg), t.name, time.Since(start).Seconds())
		if err != nil {
			fmt.Fprintf(w, "%s\n", b)
		}
	}
	fmt.Fprintf(w, "fuzz targets run: %d\n", len(targets))
	return ok
}
