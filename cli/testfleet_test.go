package cli

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rmm-project/rmm/sim"
)

// testPassword is the BMC password of every test fleet. Tests assert it
// never shows up in any output.
const testPassword = "Tr0ub4dor-cli-s3cret"

// cliBlock hands each test fleet its own 32 addresses in 127.0.50.0 –
// 127.0.69.255 (the cli package's loopback block), so parallel tests never
// share a BMC address: 8 fleets per /24, 160 in all, up to 30 hosts each.
var cliBlock atomic.Int32

// blockOffset starts each test process at a different block, so two
// `go test ./cli` runs at once (several engineers, or -count with -p) rarely
// meet; newTestFleet moves on to the next block when they do.
var blockOffset = int32(os.Getpid() % 160)

const maxFleetHosts = 30

func nextBase(t *testing.T) netip.Addr {
	n := cliBlock.Add(1) - 1
	if n >= 160 {
		t.Fatalf("cli tests ran out of loopback blocks")
	}
	n = (n + blockOffset) % 160
	return netip.AddrFrom4([4]byte{127, 0, byte(50 + n/8), byte((n%8)*32 + 1)})
}

// testHost is one host of a test fleet, written into its inventory.
type testHost struct {
	name      string
	protocols string // e.g. "[ipmi]" or "[redfish, ipmi]"
	vendor    string
	scenarios string // e.g. "[slow]"
	delay     string
	extra     string // more YAML lines for the host entry, indented 4 spaces
}

// testFleet is an inventory file, the simulated fleet it describes, and an
// Env that runs rmm against them with buffers for output.
type testFleet struct {
	t     *testing.T
	dir   string
	inv   string
	fleet *sim.Fleet
	vars  map[string]string
}

// testInventory is the inventory of a test fleet at consecutive addresses
// from base.
func testInventory(base netip.Addr, hosts []testHost) string {
	var b strings.Builder
	fmt.Fprintf(&b, "version: 1\ndefaults:\n  credentials: test\n  ipmi: {port: %d}\n  redfish: {port: %d}\n", sim.DefaultIPMIPort(), sim.DefaultRedfishPort())
	fmt.Fprintf(&b, "credentials:\n  test: {user: admin, password_env: RMM_TEST_PASSWORD}\n")
	fmt.Fprintf(&b, "groups:\n  all-test: {}\nhosts:\n")
	addrs := sim.Addrs(base, len(hosts))
	for i, h := range hosts {
		fmt.Fprintf(&b, "  - name: %s\n    bmc: %s\n    groups: [all-test]\n", h.name, addrs[i])
		if h.protocols != "" {
			fmt.Fprintf(&b, "    protocols: %s\n", h.protocols)
		}
		var simKeys []string
		if h.vendor != "" {
			simKeys = append(simKeys, "vendor: "+h.vendor)
		}
		if h.scenarios != "" {
			simKeys = append(simKeys, "scenario: "+h.scenarios)
		}
		if h.delay != "" {
			simKeys = append(simKeys, "delay: "+h.delay)
		}
		if len(simKeys) > 0 {
			fmt.Fprintf(&b, "    sim: {%s}\n", strings.Join(simKeys, ", "))
		}
		if h.extra != "" {
			b.WriteString(h.extra)
			if !strings.HasSuffix(h.extra, "\n") {
				b.WriteByte('\n')
			}
		}
	}
	return b.String()
}

// newTestFleet writes an inventory for hosts at consecutive loopback
// addresses and starts a simulated BMC for each, exactly as rmm sim would.
// On cleanup it checks that no BMC session was left open.
func newTestFleet(t *testing.T, hosts ...testHost) *testFleet {
	t.Helper()
	if len(hosts) > maxFleetHosts {
		t.Fatalf("a test fleet has at most %d hosts", maxFleetHosts)
	}
	dir := t.TempDir()
	tf := &testFleet{t: t, dir: dir, inv: filepath.Join(dir, "inventory.yaml"), vars: map[string]string{
		"RMM_TEST_PASSWORD": testPassword,
		"XDG_STATE_HOME":    filepath.Join(dir, "state"),
		"HOME":              dir,
		"RMM_NO_SYSLOG":     "1",
		"USER":              "tester",
	}}
	var fl *sim.Fleet
	for attempt := 0; ; attempt++ {
		yaml := testInventory(nextBase(t), hosts)
		if err := os.WriteFile(tf.inv, []byte(yaml), 0o600); err != nil {
			t.Fatal(err)
		}
		loaded, err := loadInventory(&Env{IO: Test(nil, nil, nil), Getenv: tf.getenv}, &globalOptions{inventory: tf.inv})
		if err != nil {
			t.Fatalf("test inventory: %v\n%s", err, yaml)
		}
		specs, err := simSpecs(context.Background(), loaded, loaded.Hosts, nil)
		if err != nil {
			t.Fatal(err)
		}
		fl, err = sim.Start(context.Background(), specs, sim.WithCycleDelay(100*time.Millisecond))
		if err == nil {
			break
		}
		// Another test process holds these addresses: take the next block.
		if attempt < 5 && strings.Contains(err.Error(), "address already in use") {
			continue
		}
		t.Fatal(err)
	}
	tf.fleet = fl
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := fl.WaitSessionsClosed(ctx); err != nil {
			t.Errorf("sessions left open on the simulated BMCs: %v", err)
		}
		fl.Close()
	})
	return tf
}

func (tf *testFleet) getenv(k string) string { return tf.vars[k] }

// result is what one rmm invocation did.
type result struct {
	code   int
	stdout string
	stderr string
}

// run runs rmm in-process with args (the inventory flag is added), stdin
// not a terminal unless tty is set.
func (tf *testFleet) run(ctx context.Context, stdin string, tty bool, args ...string) result {
	tf.t.Helper()
	var out, errb bytes.Buffer
	io := Test(strings.NewReader(stdin), &out, &errb)
	io.InTTY, io.ErrTTY = tty, tty
	env := &Env{IO: io, Getenv: tf.getenv, Providers: DefaultProviders()}
	code := Main(ctx, append([]string{"-i", tf.inv}, args...), env)
	r := result{code: code, stdout: out.String(), stderr: errb.String()}
	if strings.Contains(r.stdout+r.stderr, testPassword) {
		tf.t.Errorf("the BMC password appeared in rmm's output:\nstdout:\n%s\nstderr:\n%s", r.stdout, r.stderr)
	}
	return r
}

// rmm runs rmm with a background context and no terminal.
func (tf *testFleet) rmm(args ...string) result {
	tf.t.Helper()
	return tf.run(context.Background(), "", false, args...)
}

func (tf *testFleet) host(name string) *sim.Host {
	h := tf.fleet.Host(name)
	if h == nil {
		tf.t.Fatalf("no simulated host %s", name)
	}
	return h
}

// journal returns the audit journal's content.
func (tf *testFleet) journal() string {
	b, _ := os.ReadFile(filepath.Join(tf.vars["XDG_STATE_HOME"], "rmm", "audit.log"))
	return string(b)
}
