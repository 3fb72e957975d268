package inventory

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sort"
)

// Lint returns warnings about weak spots that are valid but worth a look:
// literal passwords, insecure TLS, Redfish hosts with no certificate pin,
// password files that are missing or open to others, credential sets and
// groups nobody uses, hosts in no group. Its only I/O is a stat of each
// password file.
func (inv *Inventory) Lint() []Problem {
	var out []Problem
	warn := func(line int, format string, a ...any) {
		out = append(out, Problem{File: inv.Path, Line: line, Warning: true, Msg: fmt.Sprintf(format, a...)})
	}

	used := map[string]bool{}
	inGroup := map[string]bool{}
	for _, h := range inv.Hosts {
		used[h.Credentials] = true
		for _, g := range h.Groups {
			inGroup[g] = true
		}
	}

	creds := make([]*CredentialSet, 0, len(inv.Credentials))
	for _, c := range inv.Credentials {
		creds = append(creds, c)
	}
	sort.Slice(creds, func(i, j int) bool { return creds[i].Pos.Line < creds[j].Pos.Line })
	for _, c := range creds {
		line := c.Pos.Line
		switch c.kind {
		case sourceLiteral:
			warn(line, "credentials %s has a literal password: fine for a demo, but anyone who can read this file can use it; use password_env, password_file or password_command", c.Name)
		case sourceFile:
			fi, err := os.Stat(c.file)
			switch {
			case errors.Is(err, fs.ErrNotExist):
				warn(line, "credentials %s: password file %s does not exist", c.Name, c.file)
			case err != nil:
				warn(line, "credentials %s: password file: %v", c.Name, err)
			default:
				if msg := filePermProblem(c.file, fi); msg != "" {
					warn(line, "credentials %s: %s; rmm will refuse it", c.Name, msg)
				}
			}
		}
		if inv.complete && !used[c.Name] {
			warn(line, "credentials %s is not used by any host", c.Name)
		}
	}

	for _, pos := range inv.insecureAt {
		warn(pos.Line, "redfish.insecure: true accepts any certificate, a man in the middle's too; pin redfish.fingerprint instead")
	}

	if inv.complete {
		for _, g := range inv.Groups {
			if !inGroup[g.Name] {
				warn(g.Pos.Line, "group %s has no hosts", g.Name)
			}
		}
	}

	// Host warnings once per entry: a range entry is one line to fix.
	seen := map[int]bool{}
	for _, h := range inv.Hosts {
		if seen[h.Pos.Line] {
			continue
		}
		seen[h.Pos.Line] = true
		if len(h.Groups) == 0 {
			warn(h.Pos.Line, "%s is in no group", h.entry)
		}
		if h.TLS.Fingerprint == "" && !h.TLS.Insecure && contains(h.Protocols, ProtocolRedfish) {
			warn(h.Pos.Line, "%s uses redfish with no redfish.fingerprint pin: its certificate is trusted on first use", h.entry)
		}
	}
	sortProblems(out)
	return out
}
