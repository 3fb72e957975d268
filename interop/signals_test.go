package interop

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rmm-project/rmm/journal"
	"github.com/rmm-project/rmm/sim"
)

// TestInterrupt sends SIGINT and SIGTERM to the real rmm binary in the
// middle of a fleet-wide `power cycle --yes` against a slow simulated
// fleet: rmm must exit 130, close every session it opened, and leave an
// audit journal with one whole line for exactly the hosts it acted on.
func TestInterrupt(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			t.Parallel()
			bin := needBinary(t)
			var hosts []fhost
			for i := range 8 {
				hosts = append(hosts, fhost{name: fmt.Sprintf("slow%d", i+1), scenarios: []sim.Scenario{sim.Slow}, delay: 150 * time.Millisecond})
			}
			f := newFleet(t, nil, hosts...)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, bin, "-i", f.inv, "power", "cycle", "all", "--yes", "-j", "2", "--wait", "--reason", "interop interrupt")
			cmd.Env = envList(f.env)
			cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
			cmd.WaitDelay = 2 * time.Second
			var out, errb bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &errb
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			// Signal while a host has received its power cycle and rmm is
			// still waiting for it to come back (its journal line not yet
			// written): the hardest moment to leave the journal right.
			jpath := filepath.Join(f.env["XDG_STATE_HOME"], "rmm", "audit.log")
			acted := func() int {
				n := 0
				for _, h := range f.sim.Hosts() {
					if len(h.Machine.Actions()) > 0 {
						n++
					}
				}
				return n
			}
			eventually(t, "a host acted on and not yet journaled", 30*time.Second, func() bool {
				b, _ := os.ReadFile(jpath)
				return acted() > bytes.Count(b, []byte("\n"))
			})
			sent := time.Now()
			if err := cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			var err error
			select {
			case err = <-done:
			case <-time.After(15 * time.Second):
				t.Fatalf("rmm did not exit within 15 s of %s", sig)
			}
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 130 {
				t.Errorf("after %s: %v, want exit 130\nstdout:\n%s\nstderr:\n%s", sig, err, out.String(), errb.String())
			}
			t.Logf("exited %s after %s", sig, time.Since(sent).Round(time.Millisecond))
			// Every session closed: rmm closes them before exiting (the
			// fleet's cleanup checks again).
			wctx, wcancel := context.WithTimeout(context.Background(), 3*time.Second)
			defer wcancel()
			if err := f.sim.WaitSessionsClosed(wctx); err != nil {
				t.Errorf("after %s: %v", sig, err)
			}
			entries, bad := journal.Read(strings.NewReader(f.journal()))
			if len(bad) != 0 {
				t.Errorf("torn journal lines: %v\n%s", bad, f.journal())
			}
			lines := map[string][]journal.Entry{}
			for _, e := range entries {
				lines[e.Host] = append(lines[e.Host], e)
				if e.Action != "power cycle" || e.Reason != "interop interrupt" || e.BMC != f.addr(e.Host) {
					t.Errorf("journal line %+v", e)
				}
			}
			var actedOn []string
			for _, h := range f.sim.Hosts() {
				name := h.Spec.Name
				if len(h.Machine.Actions()) == 0 {
					// rmm marks a host "sent" before its provider has sent
					// the command (the IPMI provider first reads the power
					// state and raises the privilege), so an interrupt in
					// between journals a host the BMC never heard from:
					// conservative ("may have acted"), reported; anything
					// else for such a host is wrong.
					for _, e := range lines[name] {
						if e.Result != "interrupted" {
							t.Errorf("journal line for %s, which received no power command: %+v", name, e)
						} else {
							t.Logf("journal line for %s, which received no power command (result interrupted, %q)", name, e.Error)
						}
					}
					continue
				}
				actedOn = append(actedOn, name)
				if len(lines[name]) != 1 {
					t.Errorf("%s received %v but has %d journal lines, want 1:\n%s", name, h.Machine.Actions(), len(lines[name]), f.journal())
				}
			}
			if len(actedOn) == 0 || len(actedOn) == len(hosts) {
				t.Errorf("%d of %d hosts acted on: the signal did not land mid-run", len(actedOn), len(hosts))
			}
			if !strings.Contains(errb.String(), "interrupted") {
				t.Errorf("rmm did not say it was interrupted:\n%s", errb.String())
			}
			t.Logf("%d of %d hosts acted on before %s; journal results: %v", len(actedOn), len(hosts), sig, results(entries))
		})
	}
}

func results(es []journal.Entry) []string {
	var r []string
	for _, e := range es {
		r = append(r, e.Host+"="+e.Result)
	}
	return r
}
