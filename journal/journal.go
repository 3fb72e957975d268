// Package journal is rmm's audit trail: one JSON line per state-changing
// action (power, SEL clear), appended to a local file that several rmm
// processes may write at once, and copied to syslog when there is one.
//
// Lines are written as each host finishes, not at the end of a run, so an
// interrupted fleet-wide action leaves exactly the lines for what was done.
package journal

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/syslog"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// Entry is one action on one host.
type Entry struct {
	Time       time.Time `json:"time"`
	Operator   string    `json:"operator"`
	Reason     string    `json:"reason,omitempty"`
	Host       string    `json:"host"`
	BMC        string    `json:"bmc"`
	Protocol   string    `json:"protocol,omitempty"`
	Action     string    `json:"action"`
	Before     string    `json:"before,omitempty"`
	After      string    `json:"after,omitempty"`
	Result     string    `json:"result"`
	Error      string    `json:"error,omitempty"`
	DurationMS int64     `json:"duration_ms"`
	// Run ties together the lines of one rmm invocation.
	Run string `json:"run"`
	PID int    `json:"pid"`
}

// DefaultPath is $XDG_STATE_HOME/rmm/audit.log, or
// ~/.local/state/rmm/audit.log.
func DefaultPath(getenv func(string) string) string {
	if d := getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "rmm", "audit.log")
	}
	home := getenv("HOME")
	if home == "" {
		home = "/root"
	}
	return filepath.Join(home, ".local", "state", "rmm", "audit.log")
}

// Operator names the person running rmm without asking any name service:
// $SUDO_USER (the human behind sudo), else $LOGNAME or $USER, else the uid.
// os/user is avoided on purpose: with NSS it can reach LDAP over the network.
func Operator(getenv func(string) string) string {
	for _, k := range []string{"SUDO_USER", "LOGNAME", "USER"} {
		if v := getenv(k); v != "" {
			if k == "SUDO_USER" {
				return v + " (via sudo)"
			}
			return v
		}
	}
	return "uid " + strconv.Itoa(os.Getuid())
}

// Journal appends entries to a file and, optionally, syslog.
type Journal struct {
	path   string
	mu     sync.Mutex
	f      *os.File
	syslog *syslog.Writer
}

// Open opens (creating with mode 0600, and its directory with 0700) the
// journal at path. When useSyslog is true and a local syslog socket exists,
// entries are copied there too (facility auth, tag "rmm").
func Open(path string, useSyslog bool) (*Journal, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("audit journal: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("audit journal: %w", err)
	}
	j := &Journal{path: path, f: f}
	if useSyslog {
		// A unix socket on this machine (/dev/log); never the network.
		if w, err := syslog.New(syslog.LOG_NOTICE|syslog.LOG_AUTH, "rmm"); err == nil {
			j.syslog = w
		}
	}
	return j, nil
}

// Path is the journal file's path.
func (j *Journal) Path() string { return j.path }

// Append writes one entry as one line. The line goes out in a single write
// under an exclusive flock and is fsynced, so concurrent rmm processes never
// interleave and a crash never leaves half a line.
func (j *Journal) Append(e Entry) error {
	if e.PID == 0 {
		e.PID = os.Getpid()
	}
	b, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("audit journal: %w", err)
	}
	b = append(b, '\n')
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.f == nil {
		return errors.New("audit journal: closed")
	}
	fd := int(j.f.Fd())
	if err := syscall.Flock(fd, syscall.LOCK_EX); err != nil {
		return fmt.Errorf("audit journal: lock %s: %w", j.path, err)
	}
	_, werr := j.f.Write(b)
	serr := j.f.Sync()
	_ = syscall.Flock(fd, syscall.LOCK_UN)
	if werr != nil {
		return fmt.Errorf("audit journal: write %s: %w", j.path, werr)
	}
	if serr != nil {
		return fmt.Errorf("audit journal: sync %s: %w", j.path, serr)
	}
	if j.syslog != nil {
		_ = j.syslog.Notice(string(bytes.TrimSpace(b)))
	}
	return nil
}

// Close closes the file and the syslog connection.
func (j *Journal) Close() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.syslog != nil {
		_ = j.syslog.Close()
		j.syslog = nil
	}
	if j.f == nil {
		return nil
	}
	err := j.f.Close()
	j.f = nil
	return err
}

// Read parses a journal. Lines that do not parse (a file edited by hand)
// are returned as errors with their line number and skipped; the rest are
// returned in file order.
func Read(r io.Reader) ([]Entry, []error) {
	var out []Entry
	var errs []error
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		var e Entry
		if err := json.Unmarshal(line, &e); err != nil {
			errs = append(errs, fmt.Errorf("line %d: %w", n, err))
			continue
		}
		out = append(out, e)
	}
	if err := sc.Err(); err != nil {
		errs = append(errs, err)
	}
	return out, errs
}
