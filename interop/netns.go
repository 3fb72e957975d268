package interop

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Netns is a Linux network namespace made for a test, with its own /etc
// overrides: `ip netns exec NAME cmd` bind-mounts every file in
// /etc/netns/NAME over the one in /etc for cmd, which is how a namespace
// gets its own resolv.conf, hosts and nsswitch.conf. Creating one needs
// root (CAP_SYS_ADMIN) and the ip command (iproute2).
type Netns struct {
	// Name is the namespace's name (ip netns list).
	Name string
	ip   string
}

// NetnsPrefix starts the name of every namespace this package creates;
// the rest is the creating process's PID and a sequence number.
const NetnsPrefix = "rmm-interop-"

// NewNetns creates namespace name with loopback up and the given files
// in /etc/netns/NAME (file name -> content, e.g. "resolv.conf").
func NewNetns(ctx context.Context, name string, etc map[string]string) (*Netns, error) {
	ip, err := exec.LookPath("ip")
	if err != nil {
		return nil, fmt.Errorf("netns: %w (Debian package iproute2)", err)
	}
	n := &Netns{Name: name, ip: ip}
	dir := filepath.Join("/etc/netns", name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("netns: %w", err)
	}
	for f, content := range etc {
		if err := os.WriteFile(filepath.Join(dir, f), []byte(content), 0o644); err != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("netns: %w", err)
		}
	}
	if out, err := n.run(ctx, "netns", "add", name); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("netns: ip netns add %s: %w: %s", name, err, out)
	}
	if out, err := n.run(ctx, "-n", name, "link", "set", "lo", "up"); err != nil {
		n.Delete()
		return nil, fmt.Errorf("netns: lo up in %s: %w: %s", name, err, out)
	}
	return n, nil
}

func (n *Netns) run(ctx context.Context, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, n.ip, args...).CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

// Command is exec.CommandContext running name inside the namespace. `ip
// netns exec` execs name in place, so the process's PID is name's. The
// child gets SIGKILL if this process dies (Pdeathsig survives the exec).
func (n *Netns) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, n.ip, append([]string{"netns", "exec", n.Name, name}, args...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	cmd.WaitDelay = 2 * time.Second
	return cmd
}

// Delete removes the namespace and its /etc/netns directory. Processes
// still inside keep it alive until they exit; callers stop theirs first.
func (n *Netns) Delete() error {
	_, err := n.run(context.Background(), "netns", "del", n.Name)
	return errors.Join(err, os.RemoveAll(filepath.Join("/etc/netns", n.Name)))
}

var staleNetns = regexp.MustCompile(`^` + regexp.QuoteMeta(NetnsPrefix) + `(\d+)-\d+$`)

// RemoveStaleNetns deletes namespaces this package created in processes
// that no longer exist (a test binary that was killed), and only those: the
// name carries the creator's PID.
func RemoveStaleNetns(ctx context.Context) error {
	ip, err := exec.LookPath("ip")
	if err != nil {
		return err
	}
	out, err := exec.CommandContext(ctx, ip, "netns", "list").Output()
	if err != nil {
		return err
	}
	var errs []error
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		m := staleNetns.FindStringSubmatch(f[0])
		if m == nil {
			continue
		}
		pid, _ := strconv.Atoi(m[1])
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err == nil {
			continue
		}
		n := &Netns{Name: f[0], ip: ip}
		errs = append(errs, n.Delete())
	}
	return errors.Join(errs...)
}
