package inventory

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rmm-project/rmm/secret"
)

// DefaultCommandTimeout bounds a password_command that sets no timeout. It
// leaves room for a password manager that waits for a hardware key touch.
const DefaultCommandTimeout = 15 * time.Second

// maxSecretRead bounds what rmm reads from a password file or command.
const maxSecretRead = 64 << 10

type sourceKind int

const (
	sourceEnv sourceKind = iota + 1
	sourceFile
	sourceCommand
	sourceLiteral
)

// CredentialSet is a named user and password source. The password is
// fetched only when a command first needs it for a host (Resolve), then
// kept for the rest of the process, so a fleet-wide command runs a password
// manager once, and a command on one host never touches the others'
// secrets.
type CredentialSet struct {
	Name string
	User string
	Pos  Pos

	// Getenv reads the environment for password_env; nil means os.Getenv.
	// Set it (and OnResolve) before the first Resolve.
	Getenv func(string) string
	// OnResolve, when set, is called once with each password the first
	// time it is resolved; rmm uses it to register the password with its
	// output scrubbers.
	OnResolve func(secret.Value)

	kind    sourceKind
	env     string
	file    string
	argv    []string
	timeout time.Duration
	literal secret.Value

	once sync.Once
	// sem serialises resolution; a channel so a waiting caller can give up
	// when its context ends.
	sem      chan struct{}
	done     bool
	pass     secret.Value
	err      error
	failedAt time.Time
}

// failureTTL is how long a failed fetch is remembered. A one-shot command
// runs a broken password manager once, not once per host; a long-running
// process (rmm exporter) tries again after a while instead of failing
// forever after one transient error.
const failureTTL = 30 * time.Second

// Resolve returns the user and password. It is safe for concurrent use; the
// first call fetches, later calls get the cached result (a failure is
// cached too, for failureTTL, except a cancelled or expired ctx of the
// caller). Errors say
// what failed and never contain the password, nor a command's output.
func (c *CredentialSet) Resolve(ctx context.Context) (user string, pass secret.Value, err error) {
	c.once.Do(func() { c.sem = make(chan struct{}, 1) })
	select {
	case c.sem <- struct{}{}:
	case <-ctx.Done():
		return "", secret.Value{}, fmt.Errorf("credentials %s: %w", c.Name, ctx.Err())
	}
	defer func() { <-c.sem }()
	if c.done && c.err != nil && time.Since(c.failedAt) > failureTTL {
		c.done, c.err = false, nil
	}
	if c.done {
		if c.err != nil {
			return "", secret.Value{}, c.err
		}
		return c.User, c.pass, nil
	}
	p, err := c.fetch(ctx)
	if err != nil {
		err = fmt.Errorf("credentials %s: %w", c.Name, err)
		if ctx.Err() == nil {
			c.done, c.err, c.failedAt = true, err, time.Now()
		}
		return "", secret.Value{}, err
	}
	c.done, c.pass = true, p
	if c.OnResolve != nil {
		c.OnResolve(p)
	}
	return c.User, p, nil
}

// Source says where the password comes from, without revealing it, for
// --dry-run and error messages.
func (c *CredentialSet) Source() string {
	switch c.kind {
	case sourceEnv:
		return "env " + c.env
	case sourceFile:
		return "file " + c.file
	case sourceCommand:
		return "command " + quoteArgv(c.argv)
	case sourceLiteral:
		return "literal (demo only)"
	}
	return "none"
}

// quoteArgv joins argv for display, quoting words that need it.
func quoteArgv(argv []string) string {
	out := make([]string, len(argv))
	for i, a := range argv {
		if a == "" || strings.ContainsAny(a, " \t\n\"'\\$`") {
			a = strconv.Quote(a)
		}
		out[i] = a
	}
	return strings.Join(out, " ")
}

func (c *CredentialSet) fetch(ctx context.Context) (secret.Value, error) {
	switch c.kind {
	case sourceEnv:
		getenv := c.Getenv
		if getenv == nil {
			getenv = os.Getenv
		}
		v := getenv(c.env)
		if v == "" {
			return secret.Value{}, fmt.Errorf("environment variable %s is not set", c.env)
		}
		return secret.New(v), nil
	case sourceFile:
		return readPasswordFile(c.file)
	case sourceCommand:
		return runPasswordCommand(ctx, c.argv, c.timeout)
	case sourceLiteral:
		return c.literal, nil
	}
	return secret.Value{}, errors.New("no password source")
}

// filePermProblem explains why a password file's mode is unsafe, or "".
func filePermProblem(path string, fi os.FileInfo) string {
	if !fi.Mode().IsRegular() {
		return fmt.Sprintf("password file %s is not a regular file", path)
	}
	// Windows has no such mode bits; there the ACL is the operator's job.
	if runtime.GOOS != "windows" && fi.Mode().Perm()&0o077 != 0 {
		return fmt.Sprintf("password file %s is open to group or others (mode %04o); run: chmod 600 %s", path, fi.Mode().Perm(), path)
	}
	return ""
}

// readPasswordFile returns the first line of a file that only its owner
// can read.
func readPasswordFile(path string) (secret.Value, error) {
	// Stat before opening, so a FIFO cannot block the open.
	fi, err := os.Stat(path)
	if err != nil {
		return secret.Value{}, fmt.Errorf("password file: %w", err)
	}
	if msg := filePermProblem(path, fi); msg != "" {
		return secret.Value{}, errors.New("refusing " + msg)
	}
	f, err := os.Open(path)
	if err != nil {
		return secret.Value{}, fmt.Errorf("password file: %w", err)
	}
	defer f.Close()
	// Check again on the open file, in case it was swapped.
	if fi, err = f.Stat(); err != nil {
		return secret.Value{}, fmt.Errorf("password file: %w", err)
	}
	if msg := filePermProblem(path, fi); msg != "" {
		return secret.Value{}, errors.New("refusing " + msg)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxSecretRead))
	if err != nil {
		return secret.Value{}, fmt.Errorf("password file: %w", err)
	}
	pass := firstLine(data)
	if pass == "" {
		return secret.Value{}, fmt.Errorf("password file %s is empty (its first line is the password)", path)
	}
	return secret.New(pass), nil
}

func firstLine(b []byte) string {
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		b = b[:i]
	}
	return string(bytes.TrimSuffix(b, []byte("\r")))
}

// capBuffer keeps at most max bytes and counts the rest.
type capBuffer struct {
	buf   bytes.Buffer
	max   int
	total int
}

func (b *capBuffer) Write(p []byte) (int, error) {
	b.total += len(p)
	if room := b.max - b.buf.Len(); room > 0 {
		b.buf.Write(p[:min(room, len(p))])
	}
	return len(p), nil
}

// runPasswordCommand runs argv directly (no shell) with a deadline and
// returns the first line of its stdout. Its stderr is never shown: a
// password manager's diagnostics can include what it was decrypting.
func runPasswordCommand(ctx context.Context, argv []string, timeout time.Duration) (secret.Value, error) {
	if timeout <= 0 {
		timeout = DefaultCommandTimeout
	}
	name := quoteArgv(argv)
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(cctx, argv[0], argv[1:]...)
	stdout := &capBuffer{max: maxSecretRead}
	stderr := &capBuffer{} // counted, never kept
	cmd.Stdout, cmd.Stderr = stdout, stderr
	// A grandchild that keeps the pipes open must not hold rmm past the
	// deadline.
	cmd.WaitDelay = time.Second
	err := cmd.Run()
	if errors.Is(err, exec.ErrWaitDelay) && cmd.ProcessState != nil && cmd.ProcessState.Success() {
		err = nil
	}
	switch {
	case ctx.Err() != nil:
		return secret.Value{}, fmt.Errorf("password command %s: %w", name, ctx.Err())
	case cctx.Err() != nil:
		return secret.Value{}, fmt.Errorf("password command %s did not finish within %s and was killed (a password manager waiting for input?)", name, timeout)
	case err != nil:
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return secret.Value{}, fmt.Errorf("password command %s failed (%s); its stderr (%d bytes) is not shown because it may hold secrets: run the command yourself to see it", name, ee.ProcessState, stderr.total)
		}
		// Start failures (not found, not executable) carry no output.
		return secret.Value{}, fmt.Errorf("password command %s: %w", name, err)
	}
	pass := firstLine(stdout.buf.Bytes())
	if pass == "" {
		return secret.Value{}, fmt.Errorf("password command %s printed nothing on its first line of output", name)
	}
	return secret.New(pass), nil
}
