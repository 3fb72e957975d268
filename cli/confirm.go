package cli

import (
	"bufio"
	"fmt"
	"strconv"
	"strings"

	"github.com/rmm-project/rmm/inventory"
)

// confirmTypeCountOver is the number of hosts above which a plain "y" is not
// enough: the operator types the host count, which cannot be done by reflex.
const confirmTypeCountOver = 5

// confirm asks before a destructive action. --yes skips it; without a
// terminal on stdin (a script, cron) it refuses unless --yes, so a piped
// "yes |" cannot reboot a fleet by accident. Every host is named with its
// BMC IP, because a stale inventory line is how the wrong server gets
// rebooted.
func confirm(env *Env, yes bool, what string, hosts []*inventory.Host) error {
	if yes {
		return nil
	}
	n := len(hosts)
	noun := "hosts"
	if n == 1 {
		noun = "host"
	}
	if !env.IO.InTTY {
		return &ExitError{Code: ExitRefused, Err: fmt.Errorf("refusing to %s %d %s without confirmation: stdin is not a terminal\nhint: pass --yes when a script means it, or --dry-run to see what would happen", what, n, noun)}
	}
	w := env.IO.ErrOut
	fmt.Fprintf(w, "About to %s %d %s:\n", what, n, noun)
	for _, h := range hosts {
		fmt.Fprintf(w, "  %-20s bmc %s\n", h.Name, h.Addr)
	}
	in := bufio.NewReader(env.IO.In)
	if n > confirmTypeCountOver {
		fmt.Fprintf(w, "Type the number of hosts (%d) to %s them: ", n, what)
		line, _ := in.ReadString('\n')
		if got, err := strconv.Atoi(strings.TrimSpace(line)); err != nil || got != n {
			return &ExitError{Code: ExitRefused, Err: fmt.Errorf("not confirmed (expected %d): nothing was done", n)}
		}
		return nil
	}
	fmt.Fprintf(w, "Proceed? [y/N] ")
	line, _ := in.ReadString('\n')
	switch strings.ToLower(strings.TrimSpace(line)) {
	case "y", "yes":
		return nil
	}
	return &ExitError{Code: ExitRefused, Err: fmt.Errorf("not confirmed: nothing was done")}
}
