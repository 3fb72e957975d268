package interop

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rmm-project/rmm/sim"
	"github.com/rmm-project/rmm/sim/ipmisim"
	"github.com/rmm-project/rmm/sim/redfishsim"
)

// The test binary doubles as the suite's helper processes (a DNS canary
// and a simulated fleet inside a network namespace, a Go resolver for the
// positive control): with RMM_INTEROP_HELPER set, TestMain runs that helper
// instead of the tests.
const helperEnv = "RMM_INTEROP_HELPER"

var (
	// rmmBin is the real rmm binary, built once by TestMain.
	rmmBin      string
	rmmBuildErr error
)

func TestMain(m *testing.M) {
	if mode := os.Getenv(helperEnv); mode != "" {
		os.Exit(runHelper(mode))
	}
	flag.Parse()
	if l := flag.Lookup("test.list"); l != nil && l.Value.String() != "" {
		os.Exit(m.Run()) // listing (testreport counts fuzz targets): nothing to build
	}
	dir, err := os.MkdirTemp("", "rmm-interop-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	rmmBin, rmmBuildErr = buildRMM(dir)
	if os.Geteuid() == 0 {
		_ = RemoveStaleNetns(context.Background())
	}
	code := m.Run()
	stopFarm()
	os.RemoveAll(dir)
	os.Exit(code)
}

// buildRMM builds ./cmd/rmm into dir. A build failure does not stop the
// in-process tests; the end-to-end ones report it.
func buildRMM(dir string) (string, error) {
	goBin := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(goBin); err != nil {
		goBin = "go"
	}
	out := filepath.Join(dir, "rmm")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, goBin, "build", "-o", out, "github.com/rmm-project/rmm/cmd/rmm")
	cmd.Dir = ".."
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/rmm: %w\n%s", err, b)
	}
	return out, nil
}

// needBinary returns the rmm binary or fails the test with the build error.
func needBinary(t *testing.T) string {
	t.Helper()
	if rmmBuildErr != nil {
		t.Fatalf("the rmm binary did not build: %v", rmmBuildErr)
	}
	return rmmBin
}

// runHelper runs one helper mode and returns its exit code.
func runHelper(mode string) int {
	switch mode {
	case "dns":
		return dnsHelper()
	case "lookup":
		return lookupHelper()
	case "fleet":
		return fleetHelper()
	}
	fmt.Fprintf(os.Stderr, "unknown %s=%q\n", helperEnv, mode)
	return 2
}

// dnsHelper serves a DNSCanary on $RMM_INTEROP_DNS_ADDR and prints
// "ready", then one line per query, until stdin closes.
func dnsHelper() int {
	ap, err := netip.ParseAddrPort(os.Getenv("RMM_INTEROP_DNS_ADDR"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "dns helper:", err)
		return 2
	}
	var mu sync.Mutex
	w := bufio.NewWriter(os.Stdout)
	c, err := StartDNSCanary(ap, func(q Query) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(w, "query %s %s %d %s\n", q.Proto, q.Name, q.Type, q.From)
		w.Flush()
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "dns helper:", err)
		return 1
	}
	mu.Lock()
	fmt.Fprintln(w, "ready")
	w.Flush()
	mu.Unlock()
	waitStdinEOF()
	c.Close()
	return 0
}

// lookupHelper resolves $RMM_INTEROP_LOOKUP with Go's resolver (the
// positive control: this must reach the canary).
func lookupHelper() int {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	addrs, err := net.DefaultResolver.LookupHost(ctx, os.Getenv("RMM_INTEROP_LOOKUP"))
	fmt.Printf("addrs %v err %v\n", addrs, err)
	return 0
}

// helperFleet is the spec of a fleet the fleet helper serves.
type helperFleet struct {
	Hosts []sim.HostSpec
	// Redfish and IPMI faults by host name, switched on after start.
	Redfish map[string]redfishsim.Faults
	IPMI    map[string]ipmisim.Faults
}

// fleetHelper serves the fleet in $RMM_INTEROP_SPEC (JSON helperFleet),
// prints "ready", answers "sessions" with "sessions N" and stops when stdin
// closes.
func fleetHelper() int {
	b, err := os.ReadFile(os.Getenv("RMM_INTEROP_SPEC"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "fleet helper:", err)
		return 2
	}
	var spec helperFleet
	if err := json.Unmarshal(b, &spec); err != nil {
		fmt.Fprintln(os.Stderr, "fleet helper:", err)
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	fl, err := sim.Start(ctx, spec.Hosts)
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, "fleet helper:", err)
		return 1
	}
	defer fl.Close()
	for name, f := range spec.Redfish {
		if h := fl.Host(name); h != nil && h.Redfish != nil {
			h.Redfish.SetFaults(f)
		}
	}
	for name, f := range spec.IPMI {
		if h := fl.Host(name); h != nil && h.IPMI != nil {
			h.IPMI.SetFaults(f)
		}
	}
	fmt.Println("ready")
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		switch strings.TrimSpace(sc.Text()) {
		case "sessions":
			fmt.Printf("sessions %d\n", fl.OpenSessions())
		}
	}
	return 0
}

func waitStdinEOF() {
	buf := make([]byte, 256)
	for {
		if _, err := os.Stdin.Read(buf); err != nil {
			return
		}
	}
}
