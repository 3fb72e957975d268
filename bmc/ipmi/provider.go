// Package ipmi is rmm's native IPMI provider: IPMI v2.0 over RMCP+
// ("lanplus"), spoken by rmm's own session layer (package rmcp) instead of
// go-ipmi's client, whose IVs and sequence numbers come from math/rand.
// go-ipmi still encodes the messages and decodes SEL and SDR records.
//
// A Provider holds one session to one BMC. Like every bmc.Provider it is
// used by one goroutine at a time; the session refuses interleaved calls
// rather than mixing them up.
package ipmi

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/rmm-project/rmm/bmc"
	"github.com/rmm-project/rmm/bmc/ipmi/rmcp"
)

// Name is the provider's name in bmclib's registry and in error messages.
const Name = "rmm-ipmi"

// closeTimeout bounds Close Session when the caller's context is gone.
const closeTimeout = 500 * time.Millisecond

// Provider talks IPMI v2.0 to one BMC. Build it with New.
type Provider struct {
	t bmc.Target

	mu   sync.Mutex
	sess *rmcp.Session
	sdrs *sdrSet // the SDR repository, read once per session when needed
}

// Interfaces a Provider implements, checked at compile time.
var (
	_ bmc.Provider       = (*Provider)(nil)
	_ bmc.IdentityReader = (*Provider)(nil)
	_ bmc.SELReader      = (*Provider)(nil)
	_ bmc.SELClearer     = (*Provider)(nil)
	_ bmc.HealthReader   = (*Provider)(nil)
	_ bmc.ConsoleOpener  = (*Provider)(nil)
	_ bmc.ProviderFunc   = New
)

// New returns a provider for t. It checks the target and opens nothing.
func New(t bmc.Target) (bmc.Provider, error) {
	if !t.Addr.IsValid() {
		return nil, fmt.Errorf("%s: no bmc ip address: %w", Name, bmc.ErrHostname)
	}
	if t.CipherSuite != 0 {
		if _, err := rmcp.LookupSuite(t.CipherSuite); err != nil {
			return nil, fmt.Errorf("%w: %w", bmc.ErrUnsupported, err)
		}
	}
	return &Provider{t: t}, nil
}

// Name returns "rmm-ipmi".
func (p *Provider) Name() string { return Name }

// Open opens the RMCP+ session. Opening an open provider does nothing.
func (p *Provider) Open(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.sess != nil {
		return nil
	}
	s, err := rmcp.Open(ctx, rmcp.Config{
		Addr:        p.t.IPMIAddr(),
		Username:    p.t.Username,
		Password:    p.t.Password,
		CipherSuite: p.t.CipherSuite,
	})
	if err != nil {
		return err
	}
	p.sess = s
	return nil
}

// Close ends the session (Close Session, then the socket), with its own
// short deadline when ctx is already done. Closing twice is fine.
func (p *Provider) Close(ctx context.Context) error {
	p.mu.Lock()
	s := p.sess
	p.sess, p.sdrs = nil, nil
	p.mu.Unlock()
	if s == nil {
		return nil
	}
	if ctx.Err() != nil {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(context.WithoutCancel(ctx), closeTimeout)
		defer cancel()
	}
	return s.Close(ctx)
}

// errNotOpen is returned by every call before Open.
var errNotOpen = errors.New("ipmi session is not open")

// session returns the open session.
func (p *Provider) session() (*rmcp.Session, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.sess == nil {
		return nil, fmt.Errorf("%w: %w", bmc.ErrProtocol, errNotOpen)
	}
	return p.sess, nil
}

// Stats returns the session's packet counters (zero when not open), for
// audits and tests.
func (p *Provider) Stats() rmcp.Stats {
	s, err := p.session()
	if err != nil {
		return rmcp.Stats{}
	}
	return s.Stats()
}
