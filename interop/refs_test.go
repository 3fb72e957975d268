package interop

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The reference clients: ipmitool and FreeIPMI, each given the password
// through the environment (ipmitool -E) or a 0600 config file (FreeIPMI
// --config-file), never argv.

// refTarget is a BMC as the reference tools see it.
type refTarget struct {
	addr     string // IP literal
	port     int
	user     string
	password string
	suite    int  // RMCP+ cipher suite for ipmitool (3 for ipmi_sim)
	ipmiSim  bool // FreeIPMI needs -W opensesspriv against ipmi_sim
}

func farmTarget(b *FarmBMC) refTarget {
	return refTarget{addr: b.Addr.String(), port: int(b.IPMIAddr().Port()), user: farmUser, password: farmPassword, suite: 3, ipmiSim: true}
}

func (f *fleet) refTarget(name string) refTarget {
	h := f.host(name)
	return refTarget{addr: h.Spec.Addr.String(), port: int(h.IPMIAddr().Port()), user: simUser, password: simPassword, suite: 3}
}

// ipmitool runs ipmitool -I lanplus against t.
func ipmitool(t *testing.T, tg refTarget, args ...string) (string, error) {
	t.Helper()
	bin := needTool(t, "ipmitool", "ipmitool")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	full := append([]string{"-I", "lanplus", "-C", strconv.Itoa(tg.suite), "-N", "1", "-R", "2", "-H", tg.addr,
		"-p", strconv.Itoa(tg.port), "-U", tg.user, "-E"}, args...)
	cmd := exec.CommandContext(ctx, bin, full...)
	cmd.Env = append(os.Environ(), "IPMI_PASSWORD="+tg.password)
	cmd.WaitDelay = time.Second
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// ipmitoolPower is ipmitool's "chassis power status": "on" or "off".
func ipmitoolPower(t *testing.T, tg refTarget) string {
	t.Helper()
	out, err := ipmitool(t, tg, "chassis", "power", "status")
	if err != nil {
		t.Fatalf("ipmitool chassis power status on %s: %v: %s", tg.addr, err, out)
	}
	s, ok := strings.CutPrefix(strings.TrimSpace(out), "Chassis Power is ")
	if !ok {
		t.Fatalf("ipmitool chassis power status on %s: %q", tg.addr, out)
	}
	return s
}

// freeipmiConf writes a FreeIPMI config file (mode 0600) with the
// credentials, shared by every target of the same user and password.
func freeipmiConf(t *testing.T, tg refTarget) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "freeipmi.conf")
	if err := os.WriteFile(p, []byte("username "+tg.user+"\npassword "+tg.password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// freeipmi runs a FreeIPMI tool against the targets (a comma list of
// IP:port, one process for all, as ipmipower's hostrange).
func freeipmi(t *testing.T, tool, pkg string, tgs []refTarget, args ...string) (string, error) {
	t.Helper()
	bin := needTool(t, tool, pkg)
	var hosts []string
	for _, tg := range tgs {
		hosts = append(hosts, tg.addr+":"+strconv.Itoa(tg.port))
	}
	full := []string{"--config-file", freeipmiConf(t, tgs[0]), "-D", "LAN_2_0", "-h", strings.Join(hosts, ",")}
	if tgs[0].ipmiSim {
		// ipmi_sim echoes the requested privilege 0 ("highest") back in
		// Open Session; FreeIPMI must ask for the real level.
		full = append(full, "-W", "opensesspriv")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, append(full, args...)...)
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir())
	cmd.WaitDelay = time.Second
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// ipmipowerStat runs ipmipower --stat over the targets and returns state
// by IP.
func ipmipowerStat(t *testing.T, tgs ...refTarget) map[string]string {
	t.Helper()
	out, err := freeipmi(t, "ipmipower", "freeipmi-tools", tgs, "--stat")
	if err != nil {
		t.Fatalf("ipmipower --stat: %v\n%s", err, out)
	}
	got := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		i := strings.LastIndex(line, ": ")
		if i < 0 {
			t.Fatalf("ipmipower --stat: unexpected line %q in\n%s", line, out)
		}
		host := line[:i]
		if h, _, ok := strings.Cut(host, ":"); ok {
			host = h
		}
		got[host] = strings.TrimSpace(line[i+2:])
	}
	return got
}

// ipmipowerDo runs ipmipower with an action (--on, --off, --cycle) and
// checks it answered ok.
func ipmipowerDo(t *testing.T, tg refTarget, action string) {
	t.Helper()
	out, err := freeipmi(t, "ipmipower", "freeipmi-tools", []refTarget{tg}, action)
	if err != nil || !strings.Contains(out, ": ok") {
		t.Fatalf("ipmipower %s on %s: %v\n%s", action, tg.addr, err, out)
	}
}

// powerRow is one host of `rmm power ... -o json`.
type powerRow struct {
	Host     string `json:"host"`
	BMC      string `json:"bmc"`
	Protocol string `json:"protocol"`
	Action   string `json:"action"`
	Before   string `json:"before"`
	After    string `json:"after"`
	Result   string `json:"result"`
	Error    string `json:"error"`
	Hint     string `json:"hint"`
}

func powerRows(t *testing.T, r result) map[string]powerRow {
	t.Helper()
	var rows []powerRow
	if err := json.Unmarshal([]byte(r.stdout), &rows); err != nil {
		t.Fatalf("rmm -o json printed something that is not JSON (%v):\n%s", err, r)
	}
	m := map[string]powerRow{}
	for _, row := range rows {
		m[row.Host] = row
	}
	return m
}

// selLine is one SEL record as ipmitool sel elist prints it.
var ipmitoolSELRecord = regexp.MustCompile(`^\s*([0-9a-f]+) \|`)

// ipmitoolSEL returns ipmitool's sel elist, one record per element.
func ipmitoolSEL(t *testing.T, tg refTarget) []string {
	t.Helper()
	out, err := ipmitool(t, tg, "sel", "elist")
	if err != nil {
		t.Fatalf("ipmitool sel elist: %v\n%s", err, out)
	}
	var recs []string
	for _, l := range strings.Split(out, "\n") {
		if ipmitoolSELRecord.MatchString(l) {
			recs = append(recs, strings.TrimSpace(l))
		}
	}
	return recs
}

// ipmiSEL returns FreeIPMI ipmi-sel's records (header dropped). The SDR
// cache goes to a fresh directory: ipmi_sim re-adds its SDRs with a new
// time stamp at every start, which would make a shared cache stale.
func ipmiSEL(t *testing.T, tg refTarget, extra ...string) []string {
	t.Helper()
	args := append([]string{"--sdr-cache-directory", t.TempDir(), "--quiet-cache"}, extra...)
	out, err := freeipmi(t, "ipmi-sel", "freeipmi-tools", []refTarget{tg}, args...)
	if err != nil {
		t.Fatalf("ipmi-sel: %v\n%s", err, out)
	}
	var recs []string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), "ID") || strings.TrimSpace(l) == "" {
			continue
		}
		recs = append(recs, strings.TrimSpace(l))
	}
	return recs
}

// selHost is one host of `rmm sel -o json`.
type selHost struct {
	Host     string     `json:"host"`
	BMC      string     `json:"bmc"`
	Protocol string     `json:"protocol"`
	Entries  []selEntry `json:"entries"`
	Total    int        `json:"total"`
	Error    string     `json:"error"`
}

// selEntry is one decoded SEL record of `rmm sel -o json`.
type selEntry struct {
	ID          string    `json:"id"`
	Time        time.Time `json:"time"`
	SensorType  string    `json:"sensor_type"`
	Sensor      string    `json:"sensor"`
	Event       string    `json:"event"`
	Direction   string    `json:"direction"`
	Severity    string    `json:"severity"`
	Message     string    `json:"message"`
	KernelPanic bool      `json:"kernel_panic"`
	Raw         string    `json:"raw"`
}

func selHosts(t *testing.T, r result) map[string]selHost {
	t.Helper()
	var hs []selHost
	if err := json.Unmarshal([]byte(r.stdout), &hs); err != nil {
		t.Fatalf("rmm sel -o json printed something that is not JSON (%v):\n%s", err, r)
	}
	m := map[string]selHost{}
	for _, h := range hs {
		m[h.Host] = h
	}
	return m
}

// compareSEL compares ipmitool's sel elist records with rmm's entries,
// field by field, and returns every difference.
func compareSEL(it []string, rmm []selEntry) []string {
	var diffs []string
	if len(it) != len(rmm) {
		diffs = append(diffs, fmt.Sprintf("ipmitool lists %d records, rmm %d", len(it), len(rmm)))
	}
	for i := range min(len(it), len(rmm)) {
		f := strings.Split(it[i], "|")
		for j := range f {
			f[j] = strings.TrimSpace(f[j])
		}
		e := rmm[i]
		if id, err := strconv.ParseUint(f[0], 16, 16); err != nil || strconv.FormatUint(id, 10) != e.ID && f[0] != e.ID {
			diffs = append(diffs, fmt.Sprintf("record %d: ipmitool id %q, rmm %q", i, f[0], e.ID))
		}
		switch len(f) {
		case 6: // id | date | time | sensor type and name | event | direction
			if got := e.Time.UTC().Format("01/02/06"); got != f[1] {
				diffs = append(diffs, fmt.Sprintf("record %s: ipmitool date %q, rmm %q (%s)", f[0], f[1], got, e.Time))
			}
			if got := e.Time.UTC().Format("15:04:05") + " UTC"; got != f[2] {
				diffs = append(diffs, fmt.Sprintf("record %s: ipmitool time %q, rmm %q (%s)", f[0], f[2], got, e.Time))
			}
			if got := strings.TrimSpace(e.SensorType + " " + e.Sensor); !strings.EqualFold(got, f[3]) {
				diffs = append(diffs, fmt.Sprintf("record %s: ipmitool sensor %q, rmm %q", f[0], f[3], got))
			}
			if !strings.EqualFold(e.Event, f[4]) {
				diffs = append(diffs, fmt.Sprintf("record %s: ipmitool event %q, rmm %q", f[0], f[4], e.Event))
			}
			if !strings.EqualFold(e.Direction, f[5]) {
				diffs = append(diffs, fmt.Sprintf("record %s: ipmitool direction %q, rmm %q", f[0], f[5], e.Direction))
			}
		case 2: // id | OEM text, e.g. "Linux kernel panic: Attempted t"
			if got := e.SensorType + ": " + e.Message; got != f[1] {
				diffs = append(diffs, fmt.Sprintf("record %s: ipmitool %q, rmm %q", f[0], f[1], got))
			}
		default:
			diffs = append(diffs, fmt.Sprintf("record %d: unexpected ipmitool line %q", i, it[i]))
		}
	}
	return diffs
}
