package interop

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/rmm-project/rmm/sim"
	"github.com/rmm-project/rmm/sim/redfishsim"
)

// canaryName is the name the positive controls resolve, and the host a
// misbehaving Redfish BMC names in its links and redirects.
const canaryName = "bmc.example.com"

// netnsSeq numbers this process's namespaces.
var netnsSeq atomic.Int32

// canary is the DNS canary helper running inside a namespace.
type canary struct {
	mu      sync.Mutex
	queries []string
	n       atomic.Int64
}

func (c *canary) count() int64 { return c.n.Load() }

func (c *canary) since(i int) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.queries[min(i, len(c.queries)):]...)
}

func (c *canary) seen() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.queries)
}

// helperProc is a helper process (this test binary in a helper mode)
// inside the namespace, with its stdin held open: closing it stops the
// helper.
type helperProc struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	lines chan string
	done  chan struct{}
}

// startHelper starts this test binary as helper mode inside ns, waits for
// its "ready" line, and stops it at cleanup (stdin closed, then SIGKILL
// after 5 s).
func startHelper(t *testing.T, ns *Netns, mode string, env ...string) *helperProc {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := ns.Command(context.Background(), self)
	cmd.Env = append(append(os.Environ(), helperEnv+"="+mode), env...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	h := &helperProc{cmd: cmd, stdin: stdin, lines: make(chan string, 1024), done: make(chan struct{})}
	go func() {
		defer close(h.lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			h.lines <- sc.Text()
		}
	}()
	go func() {
		_ = cmd.Wait()
		close(h.done)
	}()
	t.Cleanup(func() {
		stdin.Close()
		select {
		case <-h.done:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-h.done
		}
	})
	select {
	case l := <-h.lines:
		if l != "ready" {
			t.Fatalf("%s helper said %q first\n%s", mode, l, stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("%s helper not ready within 30 s\n%s", mode, stderr.String())
	}
	return h
}

// ask sends a command line to a helper and returns its answer line.
func (h *helperProc) ask(t *testing.T, line string) string {
	t.Helper()
	if _, err := fmt.Fprintln(h.stdin, line); err != nil {
		t.Fatalf("helper: %v", err)
	}
	select {
	case l := <-h.lines:
		return l
	case <-time.After(10 * time.Second):
		t.Fatalf("helper did not answer %q", line)
	}
	return ""
}

// newCanaryNetns makes a namespace whose only resolver is a canary on
// 127.0.0.53 inside it. hosts: files dns in its own nsswitch.conf, so every
// name lookup that misses its (nearly empty) hosts file asks the canary,
// whatever the machine's own /etc says.
func newCanaryNetns(t *testing.T) (*Netns, *canary) {
	t.Helper()
	needRoot(t)
	needTool(t, "ip", "iproute2")
	name := fmt.Sprintf("%s%d-%d", NetnsPrefix, os.Getpid(), netnsSeq.Add(1))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ns, err := NewNetns(ctx, name, map[string]string{
		"resolv.conf":   "# rmm interop: the DNS canary\nnameserver 127.0.0.53\noptions timeout:1 attempts:1\n",
		"hosts":         "127.0.0.1 localhost\n::1 localhost\n",
		"nsswitch.conf": "passwd: files\ngroup: files\nshadow: files\nhosts: files dns\nnetworks: files\nprotocols: files\nservices: files\n",
	})
	if err != nil {
		t.Fatalf("network namespace (root is available, so this is a failure): %v", err)
	}
	t.Cleanup(func() {
		if err := ns.Delete(); err != nil {
			t.Errorf("deleting namespace %s: %v", ns.Name, err)
		}
	})
	c := &canary{}
	h := startHelper(t, ns, "dns", "RMM_INTEROP_DNS_ADDR=127.0.0.53:53")
	go func() {
		for l := range h.lines {
			if strings.HasPrefix(l, "query ") {
				c.mu.Lock()
				c.queries = append(c.queries, strings.TrimPrefix(l, "query "))
				c.mu.Unlock()
				c.n.Add(1)
			}
		}
	}()
	return ns, c
}

// TestNoDNS proves rmm never asks DNS: every command runs inside a network
// namespace whose resolver is a canary counting every packet, next to the
// simulated fleet (served by `rmm sim` in the same namespace, and by a
// helper for Redfish BMCs whose links and redirects name a host). The
// count for rmm must be 0, while a positive control in the same namespace
// (getent, and Go's resolver) must make it go up: otherwise the test could
// not fail. It logs rmm-report: dns-queries=N for make test's summary.
func TestNoDNS(t *testing.T) {
	t.Parallel()
	needBinary(t)
	ns, c := newCanaryNetns(t)
	dir := t.TempDir()
	// Inside the namespace: real ports (623, 443), addresses of our block.
	hosts := []struct {
		name, addr, protocols, sim string
	}{
		{"ipmi1", "127.0.78.1", "[ipmi]", ""},
		{"ipmi2", "127.0.78.2", "[ipmi]", ""},
		{"panic1", "127.0.78.3", "[ipmi]", "{scenario: [panicked]}"},
		{"rf1", "127.0.78.4", "[redfish]", "{vendor: dell}"},
		{"both1", "127.0.78.5", "[redfish, ipmi]", "{vendor: hpe}"},
		{"tool1", "127.0.78.6", "[ipmitool]", ""},
		{"absolute1", "127.0.78.10", "[redfish]", ""},
		{"redirect1", "127.0.78.11", "[redfish]", ""},
	}
	var inv strings.Builder
	inv.WriteString("version: 1\ndefaults:\n  credentials: t\ncredentials:\n  t: {user: " + simUser + ", password_env: " + passwordEnv + "}\n")
	inv.WriteString("groups:\n  sim: {}\n  odd: {}\nhosts:\n")
	for _, h := range hosts {
		g := "sim"
		if strings.HasPrefix(h.name, "absolute") || strings.HasPrefix(h.name, "redirect") {
			g = "odd" // served by the helper, not rmm sim
		}
		fmt.Fprintf(&inv, "  - name: %s\n    bmc: %s\n    groups: [%s]\n    protocols: %s\n", h.name, h.addr, g, h.protocols)
		if h.sim != "" {
			fmt.Fprintf(&inv, "    sim: %s\n", h.sim)
		}
	}
	invPath := filepath.Join(dir, "inventory.yaml")
	if err := os.WriteFile(invPath, []byte(inv.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{
		passwordEnv: simPassword, "XDG_STATE_HOME": filepath.Join(dir, "state"), "HOME": dir,
		"RMM_NO_SYSLOG": "1", "USER": "interop", "PATH": os.Getenv("PATH"), "LANG": "C.UTF-8",
	}

	// The Redfish BMCs that name a host: served by a helper fleet.
	spec := helperFleet{
		Hosts: []sim.HostSpec{
			{Name: "absolute1", Addr: netip.MustParseAddr("127.0.78.10"), RedfishPort: 443, Vendor: "dmtf", Username: simUser, Password: simPassword},
			{Name: "redirect1", Addr: netip.MustParseAddr("127.0.78.11"), RedfishPort: 443, Vendor: "dmtf", Username: simUser, Password: simPassword},
		},
		Redfish: map[string]redfishsim.Faults{
			"absolute1": {AbsoluteHost: canaryName},
			"redirect1": {RedirectHost: canaryName},
		},
	}
	specPath := filepath.Join(dir, "fleet.json")
	b, _ := json.Marshal(spec)
	if err := os.WriteFile(specPath, b, 0o600); err != nil {
		t.Fatal(err)
	}
	odd := startHelper(t, ns, "fleet", "RMM_INTEROP_SPEC="+specPath)

	// The rest: `rmm sim` itself, in the namespace (its queries count too).
	ready := filepath.Join(dir, "sim.ready")
	simCmd := ns.Command(context.Background(), rmmBin, "-i", invPath, "sim", "@sim", "--ready-file", ready)
	simCmd.Env = envList(env)
	var simOut strings.Builder
	simCmd.Stdout, simCmd.Stderr = &simOut, &simOut
	if err := simCmd.Start(); err != nil {
		t.Fatal(err)
	}
	simDone := make(chan struct{})
	go func() { _ = simCmd.Wait(); close(simDone) }()
	t.Cleanup(func() {
		_ = simCmd.Process.Signal(syscall.SIGINT)
		select {
		case <-simDone:
		case <-time.After(5 * time.Second):
			_ = simCmd.Process.Kill()
			<-simDone
		}
	})
	eventually(t, "rmm sim ready", 30*time.Second, func() bool {
		_, err := os.Stat(ready)
		select {
		case <-simDone:
			t.Fatalf("rmm sim exited:\n%s", simOut.String())
		default:
		}
		return err == nil
	})

	rmm := func(args ...string) result {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		before := c.seen()
		r := runBinary(t, ctx, env, ns, append([]string{"-i", invPath}, args...), simPassword)
		time.Sleep(20 * time.Millisecond) // a query in flight reaches the canary's log
		if q := c.since(before); len(q) > 0 {
			t.Errorf("rmm %s asked DNS %d times: %v", strings.Join(args, " "), len(q), q)
		}
		return r
	}
	commands := [][]string{
		{"list"},
		{"inventory", "check"},
		{"hosts"},
		{"power", "status", "all", "-o", "json", "--timeout", "5s"},
		{"power", "cycle", "ipmi1", "--yes", "--wait"},
		{"power", "off", "rf1,tool1", "--yes"},
		{"power", "on", "rf1,tool1"},
		{"known-bmcs", "check", "rf1,both1"},
		{"known-bmcs"},
		{"journal"},
	}
	for _, name := range []string{"sel", "console", "health", "audit"} {
		if !hasCommand(name) {
			t.Logf("rmm %s does not exist yet: not part of this proof", name)
			continue
		}
		switch name {
		case "sel":
			commands = append(commands, []string{"sel", "@sim"})
		case "console":
			commands = append(commands, []string{"console", "panic1", "--capture", "1s"})
		case "health":
			commands = append(commands, []string{"health", "@sim"})
		case "audit":
			commands = append(commands, []string{"audit", "@sim"})
		}
	}
	var status result
	for _, args := range commands {
		r := rmm(args...)
		if args[0] == "power" && args[1] == "status" {
			status = r
		}
	}
	rows := powerRows(t, status)
	for _, h := range hosts {
		row := rows[h.name]
		switch h.name {
		case "absolute1", "redirect1":
			// Refused, not resolved: a clear error naming the host it was
			// sent to, and no attempt to reach it.
			if row.Result == "ok" || !strings.Contains(row.Error, canaryName) || !strings.Contains(row.Error, hostErr(h.name, h.addr)) {
				t.Errorf("%s: a BMC that names %s must be refused with a clear error: %+v", h.name, canaryName, row)
			}
			t.Logf("%s: %s: %s", h.name, row.Result, row.Error)
		default:
			if row.Result != "ok" {
				t.Errorf("%s: %+v", h.name, row)
			}
		}
	}
	if got := odd.ask(t, "sessions"); got != "sessions 0" {
		t.Errorf("the Redfish BMCs that name a host hold sessions after rmm refused them: %s", got)
	}

	n := c.count()
	t.Logf("rmm-report: dns-queries=%d", n)
	if n != 0 {
		t.Errorf("rmm's commands sent %d DNS queries: %v", n, c.since(0))
	}

	// Positive controls: in the same namespace, resolving a name reaches
	// the canary, with glibc (getent) and with Go's own resolver.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, _ := ns.Command(ctx, "getent", "hosts", canaryName).CombinedOutput()
	eventually(t, "getent hosts "+canaryName+" reaches the canary (positive control; output "+oneLine(string(out))+")", 5*time.Second, func() bool { return c.count() > n })
	afterGetent := c.count()
	self, _ := os.Executable()
	look := ns.Command(ctx, self)
	look.Env = append(os.Environ(), helperEnv+"=lookup", "RMM_INTEROP_LOOKUP="+canaryName)
	out, _ = look.CombinedOutput()
	eventually(t, "Go's resolver reaches the canary (positive control; output "+oneLine(string(out))+")", 5*time.Second, func() bool { return c.count() > afterGetent })
	t.Logf("positive controls: getent sent %d queries, Go's resolver %d: %v", afterGetent-n, c.count()-afterGetent, c.since(int(n)))
}
