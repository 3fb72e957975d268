package ipmi

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/rmm-project/rmm/bmc"
	"github.com/rmm-project/rmm/bmc/ipmi/rmcp"
)

// Console activates Serial-over-LAN on the open session (encrypted and
// authenticated when the cipher suite allows, at most the BMC's inbound
// payload size of keystrokes per packet) and returns it as a bmc.Console.
// When another session holds the payload the error wraps bmc.ErrBusy, names
// the holder when the BMC tells, and hints at --force; opts.Force takes the
// payload over instead. While the console is open it owns the session;
// closing it ends the session too.
func (p *Provider) Console(ctx context.Context, opts bmc.ConsoleOptions) (bmc.Console, error) {
	s, err := p.session()
	if err != nil {
		return nil, err
	}
	sol, err := s.OpenSOL(ctx, rmcp.SOLOptions{Force: opts.Force})
	if err != nil {
		return nil, err
	}
	return &console{p: p, sol: sol}, nil
}

// console adapts rmcp.SOL to bmc.Console.
type console struct {
	p    *Provider
	sol  *rmcp.SOL
	once sync.Once
	err  error
}

// Read returns host output; io.EOF after Close, an error wrapping
// bmc.ErrTimeout or bmc.ErrUnreachable when the session dropped.
func (c *console) Read(b []byte) (int, error) { return c.sol.Read(b) }

// Write sends keystrokes and returns once the BMC accepted them.
func (c *console) Write(b []byte) (int, error) { return c.sol.Write(b) }

// SendBreak sends a serial break.
func (c *console) SendBreak(ctx context.Context) error { return c.sol.SendBreak(ctx) }

// Close deactivates the payload and closes the session, each under its own
// short deadline so that it works after Ctrl-C. Safe to call twice.
func (c *console) Close(ctx context.Context) error {
	c.once.Do(func() {
		err := c.sol.Close(ctx)
		if cerr := c.p.Close(ctx); cerr != nil && !errors.Is(cerr, bmc.ErrTimeout) {
			err = errors.Join(err, cerr)
		}
		if err != nil {
			c.err = fmt.Errorf("close console: %w", err)
		}
	})
	return c.err
}
