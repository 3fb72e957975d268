package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
)

// profileReport is where a client's CPU time goes, from CPU profiles of
// several runs merged.
type profileReport struct {
	Client     string
	Runs       int
	Hosts      int
	Total      time.Duration
	Categories []category
	Top        string // pprof -top, the first lines
}

// category is one slice of the CPU time.
type category struct {
	Name      string
	CPU       time.Duration
	Share     float64 // of Total
	PerHostUS float64 // microseconds of CPU per host
}

// classifier maps a sample's stack to a category: GC anywhere in the
// stack first; otherwise the innermost frame that matches a rule decides.
var classifier = []struct {
	name     string
	patterns []string
}{
	{"crypto: RAKP HMACs, session keys, AES-CBC, random numbers", []string{"crypto/", "go-ipmi/pkg/crypto"}},
	{"memory allocation", []string{"runtime.mallocgc", "runtime.newobject", "runtime.makeslice", "runtime.growslice"}},
	{"kernel: send and receive UDP packets", []string{"internal/poll.(*FD).Write", "internal/poll.(*FD).Read", "internal/poll.(*FD).WriteTo", "internal/poll.(*FD).ReadFrom", "internal/poll.(*FD).WriteMsg", "internal/poll.(*FD).ReadMsg", "net.(*conn).Write", "net.(*conn).Read", "net.(*UDPConn)"}},
	{"kernel: open a UDP socket (socket, connect, epoll add)", []string{"net.socket", "net.(*sysDialer)", "net.internetSocket", "rmm/bmc.DialIP", "net.(*Dialer).Dial", "net.DialUDP", "net.ListenUDP", "net.(*ListenConfig)"}},
	{"kernel: close a UDP socket", []string{"internal/poll.(*FD).Close", "net.(*netFD).Close", "net.(*conn).Close", "internal/poll.(*FD).destroy"}},
	{"scheduler, timers, netpoll (goroutine switches)", []string{"runtime.schedule", "runtime.findRunnable", "runtime.netpoll", "runtime.park_m", "runtime.mcall", "runtime.gopark", "runtime.goready", "runtime.ready", "runtime.wakep", "runtime.startm", "runtime.stopm", "runtime.notesleep", "runtime.notewakeup", "runtime.newproc", "runtime.goexit0", "runtime.sysmon", "runtime.timerchandrain", "runtime.(*timer)", "runtime.(*timers)", "runtime.selectgo", "runtime.chansend", "runtime.chanrecv", "runtime.futex", "runtime.usleep", "runtime.lock", "runtime.unlock", "runtime.runqgrab", "runtime.checkTimers", "runtime.resetspinning"}},
	{"start-up: runtime and package init", []string{"runtime.doInit", "runtime.schedinit", "runtime.rt0_go"}},
	{"inventory: read, parse, select hosts", []string{"rmm/inventory."}},
	{"output: table, errors, summary", []string{"text/tabwriter", "cli.writeRecords", "cli.writeTable", "cli.reportErrors", "cli.finishPower", "encoding/json", "fmt.Fprintf"}},
	{"IPMI sessions: rmm's RMCP+ layer, go-ipmi message encoding", []string{"rmm/bmc/ipmi", "bougou/go-ipmi"}},
	{"bmclib registry and rmm's engine", []string{"bmc-toolbox/bmclib", "jacobweinstock/registrar", "rmm/bmc.", "go-logr"}},
	{"rmm's CLI: fan-out, contexts, rows, cobra", []string{"rmm/fanout", "rmm/cli", "context.", "spf13/cobra", "main."}},
}

const gcCategory = "garbage collector (marking, sweeping, assists)"

var gcPatterns = []string{"runtime.gcBgMarkWorker", "runtime.gcAssistAlloc", "runtime.bgsweep", "runtime.bgscavenge", "runtime.gcStart", "runtime.gcDrain", "runtime.markroot", "runtime.sweepone", "runtime.(*mheap).reclaim", "runtime.gcMarkDone", "runtime.gcMarkTermination"}

func classify(stack []string) string {
	for _, fn := range stack {
		for _, p := range gcPatterns {
			if strings.Contains(fn, p) {
				return gcCategory
			}
		}
	}
	for _, fn := range stack {
		for _, c := range classifier {
			for _, p := range c.patterns {
				if strings.Contains(fn, p) {
					return c.name
				}
			}
		}
	}
	return "other (runtime, kernel entry)"
}

// analyse merges CPU profiles with `go tool pprof -raw` and sorts the
// samples into categories; it also keeps pprof -top's head.
func analyse(ctx context.Context, client, bin string, profiles []string, runs, hosts int) (profileReport, error) {
	rep := profileReport{Client: client, Runs: runs, Hosts: hosts}
	gobin, err := exec.LookPath("go")
	if err != nil {
		gobin = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	raw, err := exec.CommandContext(ctx, gobin, append([]string{"tool", "pprof", "-raw", bin}, profiles...)...).Output()
	if err != nil {
		return rep, fmt.Errorf("go tool pprof -raw: %w", err)
	}
	byCat := map[string]time.Duration{}
	samples, locs := parseRaw(raw)
	for _, s := range samples {
		var stack []string
		for _, id := range s.locs {
			stack = append(stack, locs[id]...)
		}
		byCat[classify(stack)] += s.cpu
		rep.Total += s.cpu
	}
	for name, d := range byCat {
		c := category{Name: name, CPU: d}
		if rep.Total > 0 {
			c.Share = float64(d) / float64(rep.Total)
		}
		if runs*hosts > 0 {
			c.PerHostUS = float64(d.Microseconds()) / float64(runs*hosts)
		}
		rep.Categories = append(rep.Categories, c)
	}
	slices.SortFunc(rep.Categories, func(a, b category) int { return int(b.CPU - a.CPU) })
	top, err := exec.CommandContext(ctx, gobin, append([]string{"tool", "pprof", "-top", "-nodecount=25", bin}, profiles...)...).Output()
	if err == nil {
		lines := strings.Split(string(top), "\n")
		var keep []string
		for _, l := range lines {
			// Drop the header lines that name files and times.
			if strings.HasPrefix(l, "File:") || strings.HasPrefix(l, "Build ID:") || strings.HasPrefix(l, "Time:") || strings.HasPrefix(l, "Type:") {
				continue
			}
			keep = append(keep, shorten(l))
		}
		rep.Top = strings.TrimSpace(strings.Join(keep, "\n"))
	}
	return rep, nil
}

// shorten trims generic instantiation noise from pprof's function names.
func shorten(l string) string {
	if i := strings.Index(l, "[go.shape."); i >= 0 {
		if j := strings.LastIndex(l, "]"); j > i {
			l = l[:i] + "[...]" + l[j+1:]
		}
	}
	return l
}

type rawSample struct {
	cpu  time.Duration
	locs []int
}

// parseRaw reads `pprof -raw`: samples ("count nanoseconds: loc loc ...")
// and locations ("id: addr M=n func file:line", inlined frames on the
// lines after, indented, without an id).
func parseRaw(raw []byte) ([]rawSample, map[int][]string) {
	var samples []rawSample
	locs := map[int][]string{}
	section := ""
	cur := -1
	sc := bufio.NewScanner(bytes.NewReader(raw))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		trim := strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(line, "Samples:"):
			section = "samples"
			continue
		case strings.HasPrefix(line, "Locations"):
			section = "locations"
			continue
		case strings.HasPrefix(line, "Mappings"):
			section = ""
			continue
		}
		switch section {
		case "samples":
			head, rest, ok := strings.Cut(trim, ":")
			if !ok {
				continue
			}
			f := strings.Fields(head)
			if len(f) != 2 {
				continue
			}
			ns, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil {
				continue
			}
			s := rawSample{cpu: time.Duration(ns)}
			for _, id := range strings.Fields(rest) {
				if n, err := strconv.Atoi(id); err == nil {
					s.locs = append(s.locs, n)
				}
			}
			samples = append(samples, s)
		case "locations":
			if head, rest, ok := strings.Cut(trim, ": "); ok {
				if id, err := strconv.Atoi(head); err == nil {
					cur = id
					// "0x45e240 M=1 runtime._ExternalCode file:line s=..."
					f := strings.Fields(rest)
					if len(f) >= 3 {
						locs[cur] = append(locs[cur], f[2])
					}
					continue
				}
			}
			// An inlined frame: "func file:line s=..."
			if f := strings.Fields(trim); len(f) >= 1 && cur >= 0 {
				locs[cur] = append(locs[cur], f[0])
			}
		}
	}
	return samples, locs
}

// profileRMM runs rmm power status on the fleet with RMM_CPUPROFILE set,
// and the floor with its own profile, and analyses both. These runs are
// not timed: profiling costs a little CPU itself.
func (b *bench) profileRMM(ctx context.Context, r *runner, f *fleetSpec) error {
	n := b.cfg.profileRuns
	if n <= 0 {
		return nil
	}
	b.logf("bench: profiling rmm and the floor, %d runs each", n)
	var rmmProfs, floorProfs []string
	for i := 0; i < n; i++ {
		p := filepath.Join(b.dir, fmt.Sprintf("rmm-%d.prof", i))
		j := b.rmmJob(f, 0, "power", "status", "all")
		j.Env = append(j.Env, "RMM_CPUPROFILE="+p)
		if s := r.run(ctx, j); s.Err != nil {
			return fmt.Errorf("profiled rmm run: %w", s.Err)
		}
		rmmProfs = append(rmmProfs, p)
		q := filepath.Join(b.dir, fmt.Sprintf("floor-%d.prof", i))
		fj := b.floorJob(f)
		fj.Argv = append(fj.Argv, "-cpuprofile", q)
		if s := r.run(ctx, fj); s.Err != nil {
			return fmt.Errorf("profiled floor run: %w", s.Err)
		}
		floorProfs = append(floorProfs, q)
	}
	rp, err := analyse(ctx, "rmm power status all", b.rmm, rmmProfs, n, f.N)
	if err != nil {
		return err
	}
	fp, err := analyse(ctx, "go-ipmi floor loop", b.self, floorProfs, n, f.N)
	if err != nil {
		return err
	}
	b.profiles["rmm"], b.profiles["floor"] = rp, fp
	return nil
}

// profileList profiles rmm list on the big inventory: twice as many runs
// as the fleet profile, as each is short.
func (b *bench) profileList(ctx context.Context, r *runner, j job, hosts int) error {
	n := 2 * b.cfg.profileRuns
	if n <= 0 {
		return nil
	}
	var profs []string
	for i := 0; i < n; i++ {
		p := filepath.Join(b.dir, fmt.Sprintf("list-%d.prof", i))
		pj := j
		pj.Env = append(slices.Clone(j.Env), "RMM_CPUPROFILE="+p)
		if s := r.run(ctx, pj); s.Err != nil {
			return fmt.Errorf("profiled rmm list run: %w", s.Err)
		}
		profs = append(profs, p)
	}
	lp, err := analyse(ctx, "rmm list", b.rmm, profs, n, hosts)
	if err != nil {
		return err
	}
	b.profiles["list"] = lp
	return nil
}
