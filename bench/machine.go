package main

import (
	"bufio"
	"debug/buildinfo"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// machine describes where the numbers were measured.
type machine struct {
	Date      string
	CPU       string
	Cores     int
	MemGiB    float64
	Kernel    string
	OS        string
	GoBench   string // the toolchain that built the bench
	GoRMM     string // the toolchain that built bin/rmm
	Revision  string // bin/rmm's VCS revision (+dirty)
	Tools     []string
	User      string
	LoadStart string
	LoadEnd   string
	Duration  time.Duration
}

func describeMachine(rmm string, tools map[string]string) machine {
	m := machine{
		Date:      time.Now().UTC().Format("2006-01-02 15:04 MST"),
		Cores:     runtime.NumCPU(),
		GoBench:   runtime.Version(),
		LoadStart: loadavg(),
	}
	m.CPU = cpuinfo("model name")
	if kb := meminfo("MemTotal"); kb > 0 {
		m.MemGiB = float64(kb) / (1 << 20)
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	m.OS = osRelease()
	if bi, err := buildinfo.ReadFile(rmm); err == nil {
		m.GoRMM = bi.GoVersion
		rev, dirty := "", false
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				dirty = s.Value == "true"
			}
		}
		if len(rev) > 12 {
			rev = rev[:12]
		}
		if rev != "" && dirty {
			rev += " (with uncommitted changes in the tree)"
		}
		m.Revision = rev
	}
	if m.Revision == "" {
		m.Revision = gitRevision()
	}
	if u, err := user.Current(); err == nil {
		m.User = u.Username
		if u.Uid != "0" {
			m.User += " (not root)"
		}
	}
	m.Tools = append(m.Tools, firstLine(tools["ipmipower"], "--version"), firstLine(tools["ipmitool"], "-V"), firstLine(tools["xargs"], "--version"))
	for _, pkg := range []string{"freeipmi-tools", "ipmitool"} {
		if out, err := exec.Command("dpkg-query", "-W", "-f", "${Package} ${Version}", pkg).Output(); err == nil {
			m.Tools = append(m.Tools, "Debian package "+strings.TrimSpace(string(out)))
		}
	}
	return m
}

// gitRevision is the checked-out commit, when bin/rmm carries no VCS
// stamp (go build -buildvcs=false, or GOFLAGS saying so).
func gitRevision() string {
	out, err := exec.Command("git", "rev-parse", "--short=12", "HEAD").Output()
	if err != nil {
		return ""
	}
	rev := strings.TrimSpace(string(out))
	if st, err := exec.Command("git", "status", "--porcelain", "--untracked-files=no").Output(); err == nil && len(st) > 0 {
		rev += " (with uncommitted changes in the tree)"
	}
	return rev + ", from git in the working directory"
}

func firstLine(bin string, args ...string) string {
	out, err := exec.Command(bin, args...).CombinedOutput()
	if err != nil && len(out) == 0 {
		return bin + ": " + err.Error()
	}
	line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	return line
}

func cpuinfo(key string) string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return runtime.GOARCH
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == key {
			return strings.TrimSpace(v)
		}
	}
	return runtime.GOARCH
}

func meminfo(key string) int64 {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, key+":"); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return n
		}
	}
	return 0
}

func osRelease() string {
	b, err := os.ReadFile("/etc/os-release")
	if err != nil {
		return runtime.GOOS
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "PRETTY_NAME="); ok {
			return strings.Trim(v, `"`)
		}
	}
	return runtime.GOOS
}

// loadavg is the 1/5/15-minute load average: this machine is shared, and
// the reader should know how busy it was.
func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

// thousands writes 10000 as 10,000.
func thousands(n int) string {
	s := strconv.Itoa(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// seconds formats a duration for the table.
func seconds(d time.Duration) string {
	switch {
	case d <= 0:
		return "–"
	case d < 100*time.Millisecond:
		return fmt.Sprintf("%.4f", d.Seconds())
	default:
		return fmt.Sprintf("%.3f", d.Seconds())
	}
}
