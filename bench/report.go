package main

import (
	_ "embed"
	"fmt"
	"os"
	"strings"
	"text/template"
	"time"
)

// notes.md is the hand-written part of BENCHMARKS.md. It is a template:
// every number in it is read from this run through the view's methods.
//
//go:embed notes.md
var notesTemplate string

// clientNames are the table's names for the clients.
var clientNames = map[string]string{
	"rmm":                 "rmm",
	"ipmipower":           "ipmipower (1 process)",
	"ipmitool":            "ipmitool, xargs -P16",
	"ipmitool (one call)": "ipmitool (one call)",
	"floor":               "floor: go-ipmi loop, 64 in flight",
}

func clientName(c string) string {
	if n, ok := clientNames[c]; ok {
		return n
	}
	return c
}

// view is what the report and the notes template read.
type view struct{ b *bench }

func (v view) scenario(key string) *scenario {
	for _, sc := range v.b.scenarios {
		if sc.Key == key || (sc.Alias != "" && sc.Alias == key) {
			return sc
		}
	}
	return nil
}

func (v view) stats(key, client string) (stats, bool) {
	sc := v.scenario(key)
	if sc == nil {
		return stats{}, false
	}
	for _, c := range sc.Cells {
		if c.Job.Client == client {
			st := c.stats()
			return st, st.Good > 0
		}
	}
	return stats{}, false
}

// Med is a client's median wall time in a scenario, in seconds.
func (v view) Med(key, client string) string {
	st, ok := v.stats(key, client)
	if !ok {
		return "(not measured)"
	}
	return seconds(st.Median) + " s"
}

// MedMS is the median in milliseconds.
func (v view) MedMS(key, client string) string {
	st, ok := v.stats(key, client)
	if !ok {
		return "(not measured)"
	}
	return fmt.Sprintf("%.1f ms", float64(st.Median.Microseconds())/1000)
}

// Ratio is a's median over b's.
func (v view) Ratio(key, a, b string) string {
	sa, ok1 := v.stats(key, a)
	sb, ok2 := v.stats(key, b)
	if !ok1 || !ok2 || sb.Median == 0 {
		return "(not measured)"
	}
	return fmt.Sprintf("%.2f×", float64(sa.Median)/float64(sb.Median))
}

// CPU is a client's median CPU time (user+system, children included).
func (v view) CPU(key, client string) string {
	st, ok := v.stats(key, client)
	if !ok {
		return "(not measured)"
	}
	return seconds(st.CPU) + " s"
}

// PerHost is a client's median CPU per host, in milliseconds.
func (v view) PerHost(key, client string) string {
	st, ok := v.stats(key, client)
	sc := v.scenario(key)
	if !ok || sc.N == 0 {
		return "(not measured)"
	}
	return fmt.Sprintf("%.2f ms", st.CPU.Seconds()*1000/float64(sc.N))
}

// BMCPerHost is the simulator's median CPU per host during a client's
// runs, in milliseconds.
func (v view) BMCPerHost(key, client string) string {
	st, ok := v.stats(key, client)
	sc := v.scenario(key)
	if !ok || sc.N == 0 {
		return "(not measured)"
	}
	return fmt.Sprintf("%.2f ms", st.SimCPU.Seconds()*1000/float64(sc.N))
}

// RSS is a client's peak RSS over its runs.
func (v view) RSS(key, client string) string {
	st, ok := v.stats(key, client)
	if !ok {
		return "(not measured)"
	}
	return fmt.Sprintf("%.0f MB", mb(st.MaxRSS))
}

// Timeout is the per-host timeout of the dead-BMC scenarios.
func (v view) Timeout() string { return v.b.cfg.timeout.String() }

// TimeoutFlags says how each client was given it.
func (v view) TimeoutFlags() string { return v.b.timeoutFlags() }

// Category is a profiled client's CPU per host in the first category
// whose name starts with prefix.
func (v view) Category(client, prefix string) string {
	for _, c := range v.b.profiles[client].Categories {
		if strings.HasPrefix(c.Name, prefix) {
			return fmt.Sprintf("%.0f µs", c.PerHostUS)
		}
	}
	return "0 µs"
}

// Share is that category's share of the profiled client's CPU.
func (v view) Share(client, prefix string) string {
	p, ok := v.b.profiles[client]
	if !ok || p.Total == 0 {
		return "(not measured)"
	}
	for _, c := range p.Categories {
		if strings.HasPrefix(c.Name, prefix) {
			return fmt.Sprintf("%.0f%%", c.Share*100)
		}
	}
	return "0%"
}

// Profiled is the total profiled CPU per host of a client.
func (v view) Profiled(client string) string {
	p := v.b.profiles[client]
	if p.Runs*p.Hosts == 0 {
		return "(not measured)"
	}
	return fmt.Sprintf("%.0f µs", float64(p.Total.Microseconds())/float64(p.Runs*p.Hosts))
}

// Cores is the machine's CPU count.
func (v view) Cores() int { return v.b.machine.Cores }

// Big is the largest fleet's size, written out.
func (v view) Big() string { return thousands(v.b.big()) }

// Met says whether the target with this id was met in this run.
func (v view) Met(id string) bool {
	for _, t := range v.targets() {
		if t.ID == id {
			return t.Known && t.Met
		}
	}
	return false
}

// Missed says whether the target was judged and missed (false when it was
// not measured).
func (v view) Missed(id string) bool {
	for _, t := range v.targets() {
		if t.ID == id {
			return t.Known && !t.Met
		}
	}
	return false
}

// Verdict is the target's measured value and margin.
func (v view) Verdict(id string) string {
	for _, t := range v.targets() {
		if t.ID == id {
			return t.Measured + ": " + strings.Trim(t.Margin, "*")
		}
	}
	return "(not measured)"
}

// HasAudit says whether rmm had an audit command to measure.
func (v view) HasAudit() bool { return v.b.hasAudit }

// Port is the simulated BMCs' UDP port.
func (v view) Port() uint16 { return v.b.port }

// table renders the results table.
func (v view) table() string {
	var t strings.Builder
	t.WriteString("| scenario | client | runs | min s | median s | × ipmipower | client CPU s | BMC CPU s | peak RSS MB | answered |\n")
	t.WriteString("|---|---|--:|--:|--:|--:|--:|--:|--:|--:|\n")
	var problems []string
	for _, sc := range v.b.scenarios {
		var ref time.Duration
		for _, c := range sc.Cells {
			if c.Job.Client == "ipmipower" {
				ref = c.stats().Median
			}
		}
		for i, c := range sc.Cells {
			st := c.stats()
			title := ""
			if i == 0 {
				title = "**" + sc.Title + "**"
			}
			ratio := "–"
			if ref > 0 && st.Good > 0 {
				ratio = fmt.Sprintf("%.2f", float64(st.Median)/float64(ref))
			}
			simCPU := "–"
			if st.SimCPU > 0 {
				simCPU = seconds(st.SimCPU)
			}
			answered := "–"
			if c.Job.Count != nil && c.Job.Want > 0 {
				answered = fmt.Sprintf("%d/%d", st.MinAnswered, c.Job.Want)
			}
			runs := fmt.Sprint(st.Runs)
			if st.Good < st.Runs {
				runs = fmt.Sprintf("%d of %d ok", st.Good, st.Runs)
				problems = append(problems, fmt.Sprintf("%s, %s: %v", sc.Title, clientName(c.Job.Client), st.FirstErr))
			}
			fmt.Fprintf(&t, "| %s | %s | %s | %s | %s | %s | %s | %s | %.1f | %s |\n", title, clientName(c.Job.Client), runs,
				seconds(st.Min), seconds(st.Median), ratio, seconds(st.CPU), simCPU, mb(st.MaxRSS), answered)
		}
	}
	if len(problems) > 0 {
		t.WriteString("\nRuns that did not get every answer (not counted in min/median):\n\n")
		for _, p := range problems {
			t.WriteString("- " + p + "\n")
		}
	}
	return t.String()
}

// target is one goal from the issue, judged on this run.
type target struct {
	ID             string
	Goal, Measured string
	Met            bool
	Margin         string
	Known          bool
}

// judge compares value with limit (lower is better).
func judge(goal string, value, limit float64, unit string, format string) target {
	t := target{Goal: goal, Known: true}
	t.Measured = fmt.Sprintf(format, value) + unit + " (limit " + fmt.Sprintf(format, limit) + unit + ")"
	t.Met = value <= limit
	if limit > 0 {
		d := (value - limit) / limit * 100
		if t.Met {
			t.Margin = fmt.Sprintf("met, %.0f%% under", -d)
		} else {
			t.Margin = fmt.Sprintf("**missed, %.0f%% over**", d)
		}
	}
	return t
}

func unknown(goal, why string) target {
	return target{Goal: goal, Measured: why, Margin: "not judged"}
}

func (v view) targets() []target {
	big := v.b.big()
	key := fmt.Sprintf("status-%d", big)
	var ts []target
	add := func(id string, t target) { t.ID = id; ts = append(ts, t) }
	rmm, ok1 := v.stats(key, "rmm")
	ipp, ok2 := v.stats(key, "ipmipower")
	floor, ok3 := v.stats(key, "floor")
	goal := fmt.Sprintf("power status, %s BMCs: rmm at most 0.7× ipmipower", thousands(big))
	if ok1 && ok2 {
		add("vs-ipmipower", judge(goal, float64(rmm.Median)/float64(ipp.Median), 0.7, "×", "%.2f"))
	} else {
		add("vs-ipmipower", unknown(goal, "not measured"))
	}
	goal = fmt.Sprintf("power status, %s BMCs: rmm within 1.5× the floor", thousands(big))
	if ok1 && ok3 {
		add("vs-floor", judge(goal, float64(rmm.Median)/float64(floor.Median), 1.5, "×", "%.2f"))
	} else {
		add("vs-floor", unknown(goal, "not measured"))
	}
	for _, n := range v.b.cfg.sizes {
		id := fmt.Sprintf("dead-%d", n)
		if n == big {
			id = "dead-big"
		}
		goal = fmt.Sprintf("5%% dead, %s BMCs: rmm within 1.2× one per-host timeout (%s)", thousands(n), v.b.cfg.timeout)
		if st, ok := v.stats(fmt.Sprintf("status-%d-dead", n), "rmm"); ok {
			add(id, judge(goal, st.Median.Seconds()/v.b.cfg.timeout.Seconds(), 1.2, "×", "%.2f"))
		} else {
			add(id, unknown(goal, "not measured"))
		}
	}
	goal = fmt.Sprintf("rmm audit, %s BMCs, 5%% dead: within 1.5× (one --timeout + the healthy fleet's audit time)", thousands(big))
	ad, okd := v.stats(fmt.Sprintf("audit-%d-dead", big), "rmm")
	ah, okh := v.stats(fmt.Sprintf("audit-%d", big), "rmm")
	switch {
	case !v.b.hasAudit:
		add("audit", unknown(goal, "rmm has no audit command in this build"))
	case okd && okh:
		limit := 1.5 * (v.b.cfg.timeout.Seconds() + ah.Median.Seconds())
		add("audit", judge(goal, ad.Median.Seconds(), limit, " s", "%.2f"))
	default:
		add("audit", unknown(goal, "audit runs failed"))
	}
	var peak int64
	for _, k := range []string{key, key + "-dead"} {
		if st, ok := v.stats(k, "rmm"); ok {
			peak = max(peak, st.MaxRSS)
		}
	}
	goal = fmt.Sprintf("peak RSS of rmm at %s BMCs under 60 MB", thousands(big))
	if peak > 0 {
		add("rss", judge(goal, mb(peak), 60, " MB", "%.1f"))
	} else {
		add("rss", unknown(goal, "not measured"))
	}
	goal = "single host: rmm power status db1 faster than one ipmitool call"
	s1, ok1 := v.stats("single", "rmm")
	s2, ok2 := v.stats("single", "ipmitool (one call)")
	if ok1 && ok2 {
		add("single", judge(goal, s1.Median.Seconds()*1000, s2.Median.Seconds()*1000, " ms", "%.1f"))
	} else {
		add("single", unknown(goal, "not measured"))
	}
	if sc := v.scenario("list"); sc != nil {
		for i, c := range sc.Cells {
			st := c.stats()
			id := fmt.Sprintf("list-%d", i)
			if i == 0 {
				id = "list"
			}
			goal := fmt.Sprintf("`%s` on 10,000 hosts under 100 ms", c.Job.Client)
			if st.Good > 0 {
				add(id, judge(goal, st.Median.Seconds()*1000, 100, " ms", "%.1f"))
			} else {
				add(id, unknown(goal, "failed"))
			}
		}
	}
	return ts
}

// AnyListMissed says whether any rmm list case missed its target.
func (v view) AnyListMissed() bool {
	for _, t := range v.targets() {
		if strings.HasPrefix(t.ID, "list") && t.Known && !t.Met {
			return true
		}
	}
	return false
}

func (v view) targetTable() string {
	var t strings.Builder
	t.WriteString("| target | measured (median) | verdict |\n|---|---|---|\n")
	for _, x := range v.targets() {
		fmt.Fprintf(&t, "| %s | %s | %s |\n", x.Goal, x.Measured, x.Margin)
	}
	return t.String()
}

// profileTable sets the categories of two profiles side by side.
func (v view) profileTable(a, b string) string {
	r, f := v.b.profiles[a], v.b.profiles[b]
	if r.Runs == 0 {
		return "(not profiled)\n"
	}
	names := map[string]bool{}
	var order []string
	for _, c := range append(append([]category{}, r.Categories...), f.Categories...) {
		if !names[c.Name] {
			names[c.Name] = true
			order = append(order, c.Name)
		}
	}
	get := func(p profileReport, name string) category {
		for _, c := range p.Categories {
			if c.Name == name {
				return c
			}
		}
		return category{}
	}
	var t strings.Builder
	fmt.Fprintf(&t, "| where | %s µs/host | share | %s µs/host | share |\n|---|--:|--:|--:|--:|\n", a, b)
	for _, n := range order {
		x, y := get(r, n), get(f, n)
		fmt.Fprintf(&t, "| %s | %.0f | %.0f%% | %.0f | %.0f%% |\n", n, x.PerHostUS, x.Share*100, y.PerHostUS, y.Share*100)
	}
	fmt.Fprintf(&t, "| **total** | **%.0f** | | **%.0f** | |\n", perHost(r), perHost(f))
	return t.String()
}

// profileList is one profile's categories.
func (v view) profileOne(name string) string {
	p := v.b.profiles[name]
	if p.Runs == 0 {
		return "(not profiled)\n"
	}
	var t strings.Builder
	t.WriteString("| where | ms per run | share |\n|---|--:|--:|\n")
	for _, c := range p.Categories {
		fmt.Fprintf(&t, "| %s | %.1f | %.0f%% |\n", c.Name, float64(c.CPU.Microseconds())/1000/float64(p.Runs), c.Share*100)
	}
	fmt.Fprintf(&t, "| **total** | **%.1f** | |\n", float64(p.Total.Microseconds())/1000/float64(p.Runs))
	return t.String()
}

func perHost(p profileReport) float64 {
	if p.Runs*p.Hosts == 0 {
		return 0
	}
	return float64(p.Total.Microseconds()) / float64(p.Runs*p.Hosts)
}

func (v view) commands() string {
	var t strings.Builder
	seen := map[string]bool{}
	for _, sc := range v.b.scenarios {
		for _, c := range sc.Cells {
			line := v.b.redact(c.Job.Argv)
			if c.Job.EnvNote != "" {
				line = c.Job.EnvNote + " " + line
			}
			if seen[line] {
				continue
			}
			seen[line] = true
			fmt.Fprintf(&t, "- %s, %s:\n  `%s`\n", sc.Title, clientName(c.Job.Client), line)
		}
	}
	return t.String()
}

// redact shortens paths and long IP lists for the report, and quotes
// what a shell would otherwise expand.
func (b *bench) redact(argv []string) string {
	var out []string
	for i, a := range argv {
		switch {
		case a == b.rmm:
			a = "bin/rmm"
		case a == b.self:
			a = "bench"
		case strings.HasPrefix(a, "/") && !strings.HasPrefix(a, b.dir+"/"):
			a = a[strings.LastIndex(a, "/")+1:] // a tool found in PATH
		case strings.HasPrefix(a, b.dir+"/"):
			a = "$WORK/" + strings.TrimPrefix(a, b.dir+"/")
		case strings.Count(a, ",") > 3:
			parts := strings.Split(a, ",")
			a = fmt.Sprintf("%s,%s,…,%s", parts[0], parts[1], parts[len(parts)-1])
			out = append(out, a, fmt.Sprintf("(%d IPs)", len(parts)))
			continue
		case i > 0 && strings.ContainsAny(a, "[]*?!{}$;&|<> "):
			a = "'" + a + "'"
		}
		out = append(out, a)
	}
	return strings.Join(out, " ")
}

func (v view) machineText() string {
	m := v.b.machine
	var t strings.Builder
	fmt.Fprintf(&t, "- Date: %s; the whole run took %s\n", m.Date, m.Duration.Round(time.Second))
	fmt.Fprintf(&t, "- CPU: %s, %d cores; memory %.1f GiB\n", m.CPU, m.Cores, m.MemGiB)
	fmt.Fprintf(&t, "- OS: %s, kernel %s; run as %s\n", m.OS, m.Kernel, m.User)
	fmt.Fprintf(&t, "- Load average (1/5/15 min) at start: %s; at end: %s (the machine is shared with other jobs)\n", m.LoadStart, m.LoadEnd)
	fmt.Fprintf(&t, "- Go: %s (bin/rmm), %s (bench)\n", m.GoRMM, m.GoBench)
	if m.Revision != "" {
		fmt.Fprintf(&t, "- rmm revision: %s\n", m.Revision)
	}
	for _, tool := range m.Tools {
		fmt.Fprintf(&t, "- %s\n", tool)
	}
	fmt.Fprintf(&t, "- Simulated BMCs: `bin/rmm sim` (rmm's simulator, go-ipmi's BMC with rmm's handlers), UDP port %d, one loopback address each from 127.1.0.1 on\n", v.b.port)
	return t.String()
}

// write renders BENCHMARKS.md and prints the table.
func (b *bench) write() error {
	v := view{b}
	notes, err := template.New("notes.md").Parse(notesTemplate)
	if err != nil {
		return fmt.Errorf("bench/notes.md: %w", err)
	}
	var nb strings.Builder
	if err := notes.Execute(&nb, v); err != nil {
		return fmt.Errorf("bench/notes.md: %w", err)
	}
	var md strings.Builder
	md.WriteString("# Benchmarks\n\n")
	md.WriteString("<!-- Generated by `make bench` (bench/); do not edit. Hand-written notes live in bench/notes.md, a template that reads this run's numbers. -->\n\n")
	fmt.Fprintf(&md, "Measured %s on one machine (below) by `make bench`: rmm, FreeIPMI's `ipmipower` and `ipmitool` on the same simulated fleets, interleaved run by run. Times are wall clock, from fork to exit, of the real binaries (start-up and inventory included); the floor's is its loop alone. Ratios are medians over ipmipower's median in the same scenario.\n\n", b.machine.Date)
	md.WriteString("## Results\n\n")
	md.WriteString(v.table())
	md.WriteString("\nColumns: *client CPU* is user+system time of the client and its children (median); *BMC CPU* is the simulator's CPU during the run (median); *peak RSS* is the largest single process (wait4 `ru_maxrss`; for the ipmitool loop, one ipmitool of the 16 running at once); *answered* is the fewest hosts any run got an answer from (dead BMCs never answer).\n\n")
	for _, sc := range b.scenarios {
		if sc.Flags != "" {
			fmt.Fprintf(&md, "Per-host timeout in *%s*: %s.\n\n", sc.Title, sc.Flags)
		}
	}
	md.WriteString("## Targets\n\n")
	md.WriteString(v.targetTable())
	md.WriteString("\n## Where the time goes\n\n")
	if p := b.profiles["rmm"]; p.Runs > 0 {
		fmt.Fprintf(&md, "CPU per host of rmm power status and of the floor, each from %d profiled runs over %s BMCs (CPU profiles at 100 Hz, merged; every sample put in the first category its stack matches, see bench/profile.go):\n\n", p.Runs, thousands(p.Hosts))
		md.WriteString(v.profileTable("rmm", "floor"))
	}
	if p := b.profiles["list"]; p.Runs > 0 {
		fmt.Fprintf(&md, "\n`rmm list` on the %s-host inventory, %d profiled runs:\n\n", thousands(p.Hosts), p.Runs)
		md.WriteString(v.profileOne("list"))
	}
	for _, k := range []struct{ key, what string }{{"rmm", "rmm power status all"}, {"floor", "the floor"}, {"list", "rmm list"}} {
		if p := b.profiles[k.key]; p.Top != "" {
			fmt.Fprintf(&md, "\n<details><summary>pprof -top, %s (%d runs merged)</summary>\n\n```\n%s\n```\n</details>\n", k.what, p.Runs, p.Top)
		}
	}
	md.WriteString("\n" + strings.TrimSpace(nb.String()) + "\n")
	md.WriteString("\n## Commands\n\nExactly what ran ($WORK is the bench's temporary directory; passwords came from the environment and a 0600 FreeIPMI config file, never argv):\n\n")
	md.WriteString(v.commands())
	md.WriteString("\n## Machine\n\n")
	md.WriteString(v.machineText())
	md.WriteString("\nReproduce: `make deps` (once), then `make bench`.\n")

	if err := os.WriteFile(b.cfg.out, []byte(md.String()), 0o644); err != nil {
		return err
	}
	fmt.Println(v.table())
	fmt.Println(v.targetTable())
	fmt.Fprintf(os.Stderr, "bench: wrote %s\n", b.cfg.out)
	return nil
}
