package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

// job is one command to time: a client on a fleet.
type job struct {
	Client string // "rmm", "ipmipower", "ipmitool", "floor"
	Argv   []string
	Env    []string
	// EnvNote is the environment the report shows before the command
	// (what differs from every other run, such as GOGC=100).
	EnvNote string
	// Want is how many answers a complete run prints; Count finds them in
	// stdout. A run with fewer is marked incomplete.
	Want  int
	Count func(stdout []byte) int
	// Inner, when set, reads the client's own timing from stdout (the
	// floor reports its loop time, without process start-up).
	Inner func(stdout []byte) (time.Duration, error)
	// Limit bounds one run; the process group is killed after it.
	Limit time.Duration
	// Runs is how many timed runs this job gets.
	Runs int
}

// sample is one timed run.
type sample struct {
	Wall     time.Duration // fork to exit, or the client's own loop time (Inner)
	ProcWall time.Duration // fork to exit
	CPU      time.Duration // user+system of the client and its children
	SimCPU   time.Duration // the simulated BMCs' CPU during the run
	MaxRSS   int64         // bytes; largest single process (wait4 ru_maxrss)
	Answered int
	Exit     int
	Err      error
}

// cell is a job and its samples.
type cell struct {
	Scenario string
	Job      job
	Samples  []sample
}

// runner runs jobs with the simulator's CPU counted.
type runner struct {
	dir string
	sim *simProc // nil when no simulator runs
	log func(format string, args ...any)
}

// run times one run of j.
func (r *runner) run(ctx context.Context, j job) sample {
	out := filepath.Join(r.dir, "stdout")
	errPath := filepath.Join(r.dir, "stderr")
	of, err := os.Create(out)
	if err != nil {
		return sample{Err: err}
	}
	ef, err := os.Create(errPath)
	if err != nil {
		of.Close()
		return sample{Err: err}
	}
	rctx, cancel := context.WithTimeout(ctx, j.Limit)
	defer cancel()
	cmd := exec.CommandContext(rctx, j.Argv[0], j.Argv[1:]...)
	cmd.Env = j.Env
	cmd.Stdout, cmd.Stderr = of, ef
	// Each run in its own process group, so a timeout or Ctrl-C ends
	// xargs and every ipmitool under it, not just xargs.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second

	var sim0 time.Duration
	if r.sim != nil {
		sim0 = r.sim.cpu()
	}
	t0 := time.Now()
	err = cmd.Run()
	wall := time.Since(t0)
	var s sample
	if r.sim != nil {
		s.SimCPU = r.sim.cpu() - sim0
	}
	of.Close()
	ef.Close()
	s.Wall, s.ProcWall = wall, wall
	if ps := cmd.ProcessState; ps != nil {
		s.Exit = ps.ExitCode()
		s.CPU = ps.UserTime() + ps.SystemTime()
		if ru, ok := ps.SysUsage().(*syscall.Rusage); ok {
			s.MaxRSS = ru.Maxrss << 10 // kilobytes on Linux
		}
	}
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		s.Err = err
	}
	if rctx.Err() != nil {
		s.Err = fmt.Errorf("killed after %s: %w", j.Limit, rctx.Err())
		if ctx.Err() != nil {
			s.Err = ctx.Err()
		}
	}
	stdout, _ := os.ReadFile(out)
	if j.Count != nil {
		s.Answered = j.Count(stdout)
	}
	if j.Inner != nil && s.Err == nil {
		d, err := j.Inner(stdout)
		if err != nil {
			s.Err = err
		} else {
			s.Wall = d
		}
	}
	if s.Err == nil && s.Answered < j.Want {
		s.Err = fmt.Errorf("%d of %d answers (exit %d): %s", s.Answered, j.Want, s.Exit, tail(errPath))
	}
	return s
}

// rounds runs the cells' runs interleaved: round k runs every cell that
// still has runs left, starting at a different cell each round, so a
// burst of load from elsewhere on the machine does not land on one client.
func (r *runner) rounds(ctx context.Context, cells []*cell) error {
	maxRuns := 0
	for _, c := range cells {
		maxRuns = max(maxRuns, c.Job.Runs)
	}
	for k := 0; k < maxRuns; k++ {
		for i := range cells {
			c := cells[(i+k)%len(cells)]
			if k >= c.Job.Runs {
				continue
			}
			if err := ctx.Err(); err != nil {
				return err
			}
			s := r.run(ctx, c.Job)
			c.Samples = append(c.Samples, s)
			status := "ok"
			if s.Err != nil {
				status = s.Err.Error()
			}
			r.log("  %-34s %-10s run %d/%d: %7.3fs  cpu %6.3fs  bmc cpu %6.3fs  rss %5.1f MB  %s",
				c.Scenario, c.Job.Client, k+1, c.Job.Runs, s.Wall.Seconds(), s.CPU.Seconds(), s.SimCPU.Seconds(), mb(s.MaxRSS), status)
		}
	}
	return ctx.Err()
}

// stats summarises a cell's samples.
type stats struct {
	Runs, Good          int
	Min, Median         time.Duration
	CPU, SimCPU         time.Duration // medians
	MaxRSS              int64
	MinAnswered, Want   int
	FirstErr            error
	ProcWallMedian      time.Duration
	Samples             []time.Duration
	allWalls, goodWalls []time.Duration
}

func (c *cell) stats() stats {
	st := stats{Runs: len(c.Samples), Want: c.Job.Want, MinAnswered: -1}
	var cpu, simCPU, proc []time.Duration
	for _, s := range c.Samples {
		st.allWalls = append(st.allWalls, s.Wall)
		if st.MinAnswered < 0 || s.Answered < st.MinAnswered {
			st.MinAnswered = s.Answered
		}
		st.MaxRSS = max(st.MaxRSS, s.MaxRSS)
		if s.Err != nil {
			if st.FirstErr == nil {
				st.FirstErr = s.Err
			}
			continue
		}
		st.Good++
		st.goodWalls = append(st.goodWalls, s.Wall)
		cpu = append(cpu, s.CPU)
		simCPU = append(simCPU, s.SimCPU)
		proc = append(proc, s.ProcWall)
	}
	st.Samples = st.goodWalls
	st.Min, st.Median = minOf(st.goodWalls), median(st.goodWalls)
	st.CPU, st.SimCPU, st.ProcWallMedian = median(cpu), median(simCPU), median(proc)
	return st
}

func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func minOf(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	return slices.Min(ds)
}

func mb(b int64) float64 { return float64(b) / 1e6 }

// countLines counts stdout lines for which match is true.
func countLines(match func(string) bool) func([]byte) int {
	return func(b []byte) int {
		n := 0
		for line := range bytes.Lines(b) {
			if match(strings.TrimRight(string(line), "\r\n")) {
				n++
			}
		}
		return n
	}
}

// rmmPowerRow matches a row of `rmm power status` (piped table output:
// HOST BMC PROTOCOL POWER RESULT) for a host that answered.
func rmmPowerRow(line string) bool {
	f := strings.Fields(line)
	return len(f) == 5 && (f[3] == "on" || f[3] == "off") && f[4] == "ok"
}

// auditRow matches a row of `rmm audit` (piped table) for a host that
// passed: the last column is RESULT.
func auditRow(line string) bool {
	f := strings.Fields(line)
	return len(f) > 2 && f[len(f)-1] == "ok" && f[0] != "HOST"
}

// ipmipowerRow matches "127.1.0.7: on" (or off).
func ipmipowerRow(line string) bool {
	_, st, ok := strings.Cut(line, ": ")
	return ok && (st == "on" || st == "off")
}

// ipmitoolRow matches "Chassis Power is on" (or off).
func ipmitoolRow(line string) bool {
	return line == "Chassis Power is on" || line == "Chassis Power is off"
}
