package cli

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/rmm-project/rmm/bmc"
	"github.com/rmm-project/rmm/bmc/ipmi"
	"github.com/rmm-project/rmm/inventory"
)

func init() { register(newAuditCmd) }

// defaultPingTimeout bounds the presence probes: a BMC that is there
// answers a ping or a TCP connect in milliseconds.
const defaultPingTimeout = 2 * time.Second

// auditOptions holds rmm audit's flags and dependencies.
type auditOptions struct {
	env *Env
	g   *globalOptions
	fleetOptions

	selector    []string
	pingTimeout time.Duration
}

func newAuditCmd(env *Env, g *globalOptions) *cobra.Command {
	o := &auditOptions{env: env, g: g}
	cmd := &cobra.Command{
		Use:   "audit [SELECTOR...]",
		Short: "List which BMCs answer, accept rmm's login and are the machine the inventory says",
		Long: `Check every selected BMC (default all), in parallel, in three steps:

  presence  an RMCP/ASF presence ping (UDP, the host's IPMI port) for hosts
            with IPMI, a TCP connect to the Redfish port for hosts with
            Redfish; no credentials are sent
  sessions  open and close a session with each protocol the host lists (not
            only the first), reading the BMC's identity on each
  identity  the GUID/UUID/serial read, compared with the inventory's expect:
            entries, and the firmware version

One row per host; a host fails when a protocol it lists cannot open a
session or its identity does not match (a ping that gets no answer is only
noted: some BMCs do not answer pings). Exit 1 when any host fails.

Time: each host has --timeout in all. The presence probes (at most
--ping-timeout, 2 s) and the sessions (one per protocol) run at the same
time within it, so a dead host costs one --timeout, not a ping plus one
timeout per protocol, and a slow BMC's login is not cut short by its ping.`,
		Example: `  rmm audit
  rmm audit @db -o csv > bmc-audit.csv
  rmm audit site=ams --timeout 5s -o json | jq '.[] | select(.result != "ok")'`,
		Args:              cobra.ArbitraryArgs,
		ValidArgsFunction: completeSelector(env, g),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.selector = args
			return auditRun(cmd.Context(), o)
		},
	}
	o.fleetOptions.bind(cmd, FormatTable, FormatJSON, FormatCSV)
	cmd.Flags().DurationVar(&o.pingTimeout, "ping-timeout", defaultPingTimeout, "bound of the presence probes, taken out of --timeout")
	return cmd
}

// presenceCheck is one endpoint's presence probe.
type presenceCheck struct {
	// Protocol is "ipmi" (the endpoint of ipmi and ipmitool) or "redfish".
	Protocol string `json:"protocol"`
	Endpoint string `json:"endpoint"`
	// Method is "rmcp-ping" (UDP) or "tcp-connect".
	Method string      `json:"method"`
	Result bmc.Outcome `json:"result"`
	RTTMS  float64     `json:"rtt_ms,omitempty"`
	// IPMI is what the pong says about IPMI support.
	IPMI  *bool  `json:"ipmi,omitempty"`
	Error string `json:"error,omitempty"`
}

// sessionCheck is one protocol's login.
type sessionCheck struct {
	Protocol string      `json:"protocol"`
	Result   bmc.Outcome `json:"result"`
	// AnsweredBy is set when another provider answered (ipmitool after
	// native IPMI could not speak to the BMC).
	AnsweredBy string `json:"answered_by,omitempty"`
	// CertChanged is set when Redfish was refused because the certificate
	// is not the pinned one (Result says "auth failed", as for bmc.Classify).
	CertChanged bool          `json:"cert_changed,omitempty"`
	Identity    *bmc.Identity `json:"identity,omitempty"`
	Error       string        `json:"error,omitempty"`
	Hint        string        `json:"hint,omitempty"`
	DurationMS  int64         `json:"duration_ms"`
}

// auditResult is one host's row.
type auditResult struct {
	Host     string          `json:"host"`
	BMC      string          `json:"bmc"`
	Presence []presenceCheck `json:"presence"`
	Sessions []sessionCheck  `json:"sessions"`
	// Identity merges what each session read; Expected is the inventory's.
	Identity *bmc.Identity `json:"identity,omitempty"`
	Expected *bmc.Identity `json:"expected,omitempty"`
	// IdentityCheck is "ok", "mismatch", "not recorded" (nothing expected)
	// or "unread" (no session could read it).
	IdentityCheck string      `json:"identity_check"`
	Result        bmc.Outcome `json:"result"`
	Error         string      `json:"error,omitempty"`
	Hint          string      `json:"hint,omitempty"`
	DurationMS    int64       `json:"duration_ms"`
}

func auditRun(ctx context.Context, o *auditOptions) error {
	if err := o.fleetOptions.check(FormatTable, FormatJSON, FormatCSV); err != nil {
		return err
	}
	if o.pingTimeout <= 0 {
		return usageErrorf("--ping-timeout must be positive, got %s", o.pingTimeout)
	}
	sel := orAll(o.selector)
	f, hosts, err := openFleet(o.env, o.g, sel)
	if err != nil {
		return err
	}
	pingBudget := min(o.pingTimeout, o.timeout)
	rs := runFleet(ctx, o.env, hosts, o.fleetOptions.reading(), "audit", func(ctx context.Context, h *inventory.Host) (auditResult, error) {
		r := auditHost(ctx, f, h, pingBudget)
		if r.Result != bmc.OutcomeOK {
			return r, errors.New(r.Error)
		}
		return r, nil
	})
	results := make([]auditResult, len(rs))
	failed := 0
	for i, r := range rs {
		results[i] = r.Value
		if results[i].Host == "" { // never started
			results[i] = auditResult{Host: hosts[i].Name, BMC: hosts[i].Addr.String(), IdentityCheck: "unread",
				Result: bmc.Classify(r.Err), Error: errString(r.Err)}
		}
		if results[i].Result != bmc.OutcomeOK {
			failed++
		}
	}
	header := []string{"host", "bmc", "ping", "tcp", "ipmi", "redfish", "identity", "firmware", "result"}
	rows := make([][]string, 0, len(results))
	for _, r := range results {
		rows = append(rows, r.row())
	}
	if err := writeRecords(o.env.IO.Out, o.output, header, rows, results); err != nil {
		return err
	}
	for _, r := range results {
		if r.Result == bmc.OutcomeOK {
			continue
		}
		fmt.Fprintf(o.env.IO.ErrOut, "rmm: %s\n", r.Error)
		if r.Hint != "" {
			fmt.Fprintf(o.env.IO.ErrOut, "hint: %s\n", r.Hint)
		}
	}
	code := summarize(o.env, len(results), failed, "audit")
	if ctx.Err() != nil {
		fmt.Fprintf(o.env.IO.ErrOut, "rmm: interrupted: sessions closed\n")
		return silentExit(ExitInterrupted)
	}
	return silentExit(code)
}

// auditHost audits one host within ctx's deadline (--timeout). The
// presence probes (bounded by pingBudget) and one session per protocol run
// at once: a slow BMC's sessions get the whole --timeout rather than what a
// ping left of it, and a dead host costs one --timeout, not a ping plus one
// per protocol. A BMC that does not answer pings is still logged in to:
// some have ASF pings disabled, and a session says more than a ping.
func auditHost(ctx context.Context, f *fleet, h *inventory.Host, pingBudget time.Duration) auditResult {
	start := time.Now()
	desc := f.describe(h)
	r := auditResult{Host: h.Name, BMC: h.Addr.String(), Result: bmc.OutcomeOK}
	if !desc.Expect.IsZero() {
		exp := desc.Expect
		r.Expected = &exp
	}
	protos := desc.ProtocolOrder()
	r.Sessions = make([]sessionCheck, len(protos))
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		r.Presence = probePresence(ctx, desc, pingBudget)
	}()
	t, err := f.target(ctx, h)
	for i, p := range protos {
		if err != nil {
			r.Sessions[i] = sessionCheck{Protocol: string(p), Result: bmc.Classify(err), Error: oneLine(err.Error()), Hint: bmc.Hint(err)}
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.Sessions[i] = auditSession(ctx, f, t, p)
		}()
	}
	wg.Wait()
	r.judge()
	r.DurationMS = time.Since(start).Milliseconds()
	return r
}

// judge merges the identities, compares them with the inventory and picks
// the host's result: an identity mismatch first, then the first protocol
// that failed.
func (r *auditResult) judge() {
	var id bmc.Identity
	read := false
	for _, s := range r.Sessions {
		if s.Identity == nil {
			continue
		}
		read = true
		id.GUID = cmpOr(id.GUID, s.Identity.GUID)
		id.UUID = cmpOr(id.UUID, s.Identity.UUID)
		id.Serial = cmpOr(id.Serial, s.Identity.Serial)
		id.Vendor = cmpOr(id.Vendor, s.Identity.Vendor)
		id.Model = cmpOr(id.Model, s.Identity.Model)
		id.Firmware = cmpOr(id.Firmware, s.Identity.Firmware)
	}
	if read {
		r.Identity = &id
	}
	switch {
	case !read:
		r.IdentityCheck = "unread"
	case r.Expected == nil:
		r.IdentityCheck = "not recorded"
	default:
		r.IdentityCheck = "ok"
		if err := r.Expected.Mismatch(id); err != nil {
			r.IdentityCheck = "mismatch"
			r.Result = bmc.OutcomeIdentityMismatch
			he := &bmc.HostError{Host: r.Host, Op: "identity check", Err: err}
			if a, perr := netip.ParseAddr(r.BMC); perr == nil {
				he.Addr = a
			}
			r.Error = he.Error()
			return
		}
	}
	for _, s := range r.Sessions {
		if s.Result != bmc.OutcomeOK {
			r.Result, r.Error, r.Hint = s.Result, s.Error, s.Hint
			return
		}
	}
	if r.Expected != nil && !read {
		r.Result, r.Error = bmc.OutcomeFailed, r.Host+" (bmc "+r.BMC+"): identity: no session could read it"
	}
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// endpointProtocol is the presence probe that covers protocol p: ipmitool
// speaks to the IPMI port.
func endpointProtocol(p bmc.Protocol) string {
	if p == bmc.ProtocolRedfish {
		return string(bmc.ProtocolRedfish)
	}
	return string(bmc.ProtocolIPMI)
}

// probePresence pings the IPMI endpoint and connects to the Redfish one,
// at once, within budget. Nothing is sent that needs credentials.
func probePresence(ctx context.Context, t bmc.Target, budget time.Duration) []presenceCheck {
	var eps []string
	for _, p := range t.ProtocolOrder() {
		if ep := endpointProtocol(p); !slices.Contains(eps, ep) {
			eps = append(eps, ep)
		}
	}
	pctx, cancel := context.WithTimeout(ctx, budget)
	defer cancel()
	out := make([]presenceCheck, len(eps))
	var wg sync.WaitGroup
	for i, ep := range eps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if ep == string(bmc.ProtocolIPMI) {
				out[i] = pingIPMI(pctx, t.IPMIAddr())
			} else {
				out[i] = connectTCP(pctx, t.RedfishAddr())
			}
		}()
	}
	wg.Wait()
	return out
}

func pingIPMI(ctx context.Context, ap netip.AddrPort) presenceCheck {
	pc := presenceCheck{Protocol: string(bmc.ProtocolIPMI), Endpoint: ap.String(), Method: "rmcp-ping"}
	pong, err := ipmi.Ping(ctx, ap)
	pc.Result = bmc.Classify(err)
	if err != nil {
		pc.Error = oneLine(err.Error())
		return pc
	}
	pc.RTTMS = float64(pong.RTT.Microseconds()) / 1000
	pc.IPMI = &pong.IPMI
	return pc
}

func connectTCP(ctx context.Context, ap netip.AddrPort) presenceCheck {
	pc := presenceCheck{Protocol: string(bmc.ProtocolRedfish), Endpoint: ap.String(), Method: "tcp-connect"}
	start := time.Now()
	c, err := bmc.DialIP(ctx, "tcp", ap.String())
	pc.Result = bmc.Classify(err)
	if err != nil {
		pc.Error = oneLine(err.Error())
		return pc
	}
	pc.RTTMS = float64(time.Since(start).Microseconds()) / 1000
	_ = c.Close()
	return pc
}

// auditSession opens a session with one protocol, reads the identity and
// closes the session (Close has its own deadline, so an interrupted audit
// still closes it).
func auditSession(ctx context.Context, f *fleet, t bmc.Target, p bmc.Protocol) sessionCheck {
	start := time.Now()
	s := sessionCheck{Protocol: string(p)}
	t.Protocols = []bmc.Protocol{p}
	conn, err := f.engine.Open(ctx, t)
	if err == nil {
		if conn.Protocol() != p {
			s.AnsweredBy = string(conn.Protocol())
		}
		id, ierr := conn.Identity(ctx)
		if ierr == nil {
			s.Identity = &id
		} else if !errors.Is(ierr, bmc.ErrUnsupported) {
			err = ierr
		}
		if cerr := conn.Close(ctx); err == nil && cerr != nil && !errors.Is(cerr, context.Canceled) {
			err = cerr
		}
	}
	s.Result, s.Error, s.Hint = bmc.Classify(err), oneLine(errString(err)), bmc.Hint(err)
	s.CertChanged = errors.Is(err, bmc.ErrTLSPin)
	s.DurationMS = time.Since(start).Milliseconds()
	return s
}

// presenceText is a presence probe as a table cell.
func presenceText(ps []presenceCheck, proto string) string {
	for _, p := range ps {
		if p.Protocol != proto {
			continue
		}
		switch p.Result {
		case bmc.OutcomeOK:
			return "ok"
		case bmc.OutcomeTimeout:
			return "no answer"
		case bmc.OutcomeUnreachable:
			return "refused"
		}
		return string(p.Result)
	}
	return ""
}

// sessionText is the sessions of one protocol family as a table cell: the
// IPMI column also shows an ipmitool session when the host lists one.
func sessionText(ss []sessionCheck, family string) string {
	var parts []string
	for _, s := range ss {
		if endpointProtocol(bmc.Protocol(s.Protocol)) != family {
			continue
		}
		t := string(s.Result)
		if s.CertChanged {
			t = "cert changed"
		}
		if bmc.Protocol(s.Protocol) == bmc.ProtocolIPMItool {
			t = "ipmitool " + t
		}
		if s.AnsweredBy != "" {
			t += " (via " + s.AnsweredBy + ")"
		}
		parts = append(parts, t)
	}
	return strings.Join(parts, ", ")
}

func (r auditResult) row() []string {
	fw := ""
	if r.Identity != nil {
		fw = r.Identity.Firmware
	}
	return []string{r.Host, r.BMC,
		presenceText(r.Presence, string(bmc.ProtocolIPMI)), presenceText(r.Presence, string(bmc.ProtocolRedfish)),
		sessionText(r.Sessions, string(bmc.ProtocolIPMI)), sessionText(r.Sessions, string(bmc.ProtocolRedfish)),
		r.IdentityCheck, fw, string(r.Result)}
}
