package cli

import (
	"context"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/rmm-project/rmm/bmc"
	"github.com/rmm-project/rmm/fanout"
	"github.com/rmm-project/rmm/inventory"
	"github.com/rmm-project/rmm/knownbmcs"
)

// fleetOptions are the flags of every command that talks to BMCs.
type fleetOptions struct {
	jobs    int
	timeout time.Duration
	output  string
	// patience, set by read-only commands, lets a host that has not
	// answered for that long stop counting against --jobs (see
	// fanout.Options.Patience). Actions leave it zero: an operator may
	// use -j to pace power-ons.
	patience time.Duration
}

// readPatience is the patience of read-only fleet commands: rmm's IPMI
// layer retransmits a request unanswered for 250 ms, so by then the BMC is
// late, and waiting for it is not work. With 5% of 1,000 BMCs dead, the
// dead ones no longer hold up the rest; with 10% or 20% dead (more than
// -j), power status no longer takes two or four timeouts (make bench).
const readPatience = 250 * time.Millisecond

// reading returns the options for a read-only fan-out: hosts that have not
// answered within readPatience stop counting against -j (see
// fanout.Options.Patience), so many dead BMCs cannot stall a status, audit,
// sel or health run. Actions keep -j exact.
func (o fleetOptions) reading() fleetOptions {
	o.patience = readPatience
	return o
}

func (o *fleetOptions) bind(cmd *cobra.Command, formats ...string) {
	cmd.Flags().IntVarP(&o.jobs, "jobs", "j", fanout.DefaultJobs, "how many BMCs to talk to at once")
	cmd.Flags().DurationVar(&o.timeout, "timeout", 10*time.Second, "per-host deadline for talking to its BMC")
	if len(formats) > 0 {
		cmd.Flags().StringVarP(&o.output, "output", "o", formats[0], "output format: "+joinComma(formats))
	}
}

func (o *fleetOptions) check(formats ...string) error {
	if o.jobs < 1 {
		return usageErrorf("--jobs must be at least 1, got %d", o.jobs)
	}
	if o.timeout <= 0 {
		return usageErrorf("--timeout must be positive, got %s", o.timeout)
	}
	if len(formats) > 0 {
		return checkFormat(o.output, formats...)
	}
	return nil
}

// fleet turns inventory hosts into BMC sessions. It is shared by power,
// sel, console, audit, health and the exporter.
type fleet struct {
	env    *Env
	inv    *inventory.Inventory
	engine *bmc.Engine
	trust  bmc.TrustStore

	insecureOnce sync.Once
}

func newFleet(env *Env, inv *inventory.Inventory) (*fleet, error) {
	if env.Providers == nil {
		return nil, fmt.Errorf("internal: no BMC providers wired")
	}
	return &fleet{
		env:    env,
		inv:    inv,
		engine: &bmc.Engine{Providers: env.Providers},
		trust:  knownbmcs.New(knownbmcs.DefaultPath(env.getenv)),
	}, nil
}

// target builds a host's bmc.Target, resolving its credentials (each set
// once per process, only for hosts actually used).
func (f *fleet) target(ctx context.Context, h *inventory.Host) (bmc.Target, error) {
	t := f.describe(h)
	cs := f.inv.CredentialsFor(h)
	if cs == nil {
		return t, t.Wrap("credentials", fmt.Errorf("no credentials set for this host"))
	}
	user, pass, err := cs.Resolve(ctx)
	if err != nil {
		return t, t.Wrap("credentials", err)
	}
	t.Username, t.Password = user, pass
	if t.TLS.Insecure {
		f.insecureOnce.Do(func() {
			fmt.Fprintf(f.env.IO.ErrOut, "warning: TLS certificate checks are OFF for some hosts (insecure: true in the inventory); anyone on the path can impersonate their BMCs\n")
		})
	}
	return t, nil
}

// describe is a host's target without credentials (for --dry-run and
// errors before credentials are resolved).
func (f *fleet) describe(h *inventory.Host) bmc.Target {
	t := bmc.Target{
		Name:        h.Name,
		Addr:        h.Addr,
		IPMIPort:    h.IPMIPort,
		RedfishPort: h.RedfishPort,
		CipherSuite: h.CipherSuite,
		TLS:         bmc.TLSConfig{Fingerprint: h.TLS.Fingerprint, Insecure: h.TLS.Insecure, Trust: f.trust},
		Expect:      bmc.Identity{GUID: h.Expect.GUID, UUID: h.Expect.UUID, Serial: h.Expect.Serial},
	}
	for _, p := range h.Protocols {
		t.Protocols = append(t.Protocols, bmc.Protocol(p))
	}
	return t
}

// open resolves credentials and opens a session.
func (f *fleet) open(ctx context.Context, h *inventory.Host) (*bmc.Conn, error) {
	t, err := f.target(ctx, h)
	if err != nil {
		return nil, err
	}
	return f.engine.Open(ctx, t)
}

// withConn opens a session to h, runs fn, and closes the session on every
// path (also when ctx was cancelled: Close uses its own deadline).
func (f *fleet) withConn(ctx context.Context, h *inventory.Host, fn func(*bmc.Conn) error) error {
	conn, err := f.open(ctx, h)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	return fn(conn)
}

// run calls fn for every host with bounded concurrency and a per-host
// deadline; results come back in inventory order. A progress line goes to
// stderr when it is a terminal and there is more than a handful of hosts.
func runFleet[T any](ctx context.Context, env *Env, hosts []*inventory.Host, o fleetOptions, what string, fn func(ctx context.Context, h *inventory.Host) (T, error)) []fanout.Result[T] {
	opts := fanout.Options{Jobs: o.jobs, Timeout: o.timeout, Patience: o.patience}
	var p *progress
	if env.IO.ErrTTY && len(hosts) > 5 {
		p = &progress{w: env.IO.ErrOut, what: what}
		opts.Progress = p.update
	}
	rs := fanout.Run(ctx, len(hosts), opts, func(ctx context.Context, i int) (T, error) {
		return fn(ctx, hosts[i])
	})
	if p != nil {
		p.done()
	}
	for i, r := range rs {
		if !r.Started && r.Err != nil {
			rs[i].Err = fmt.Errorf("%s (bmc %s): not started: %w", hosts[i].Name, hosts[i].Addr, r.Err)
		}
	}
	return rs
}

// progress draws "what: 412/1000" on one terminal line.
type progress struct {
	w    io.Writer
	what string
	last time.Time
}

func (p *progress) update(done, total int) {
	if done != total && time.Since(p.last) < 100*time.Millisecond {
		return
	}
	p.last = time.Now()
	fmt.Fprintf(p.w, "\r%s: %d/%d hosts", p.what, done, total)
}

func (p *progress) done() { fmt.Fprint(p.w, "\r\033[K") }

// summarize prints "3 of 40 hosts failed" (or nothing for a single good
// host) on stderr and returns the exit code.
func summarize(env *Env, total, failed int, verb string) int {
	switch {
	case failed > 0:
		fmt.Fprintf(env.IO.ErrOut, "%d of %d hosts failed\n", failed, total)
		return ExitFailed
	case total > 1:
		fmt.Fprintf(env.IO.ErrOut, "%s: all %d hosts ok\n", verb, total)
	}
	return ExitOK
}

// reportErrors prints each failed host's error and hint on stderr, in
// inventory order, so the table on stdout stays clean.
func reportErrors[T any](env *Env, rs []fanout.Result[T]) {
	for _, r := range rs {
		if r.Err == nil {
			continue
		}
		fmt.Fprintf(env.IO.ErrOut, "rmm: %v\n", r.Err)
		if h := bmc.Hint(r.Err); h != "" {
			fmt.Fprintf(env.IO.ErrOut, "hint: %s\n", h)
		}
	}
}

// errString is an error's text for tables and JSON, empty for nil.
func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// fanoutResult names fanout.Result for signatures in this package.
type fanoutResult[T any] = fanout.Result[T]
