package bmc

import (
	"context"
	"fmt"
	"os/exec"
	"strconv"

	"github.com/bmc-toolbox/bmclib/v2/providers/ipmitool"
)

// IPMItoolProvider returns a ProviderFunc for bmclib's ipmitool provider,
// or nil when no ipmitool binary is installed. It is rmm's last resort for
// BMCs the native provider cannot speak to (IPMI 1.5 only, odd cipher
// suites). bmclib passes the password in the child's environment
// (IPMITOOL_PASSWORD with -E), never on its argv; rmm checks that in a test.
func IPMItoolProvider() ProviderFunc {
	path, err := exec.LookPath("ipmitool")
	if err != nil {
		return nil
	}
	return func(t Target) (Provider, error) {
		opts := []ipmitool.Option{ipmitool.WithIpmitoolPath(path), ipmitool.WithPort(strconv.Itoa(int(t.IPMIAddr().Port())))}
		if t.CipherSuite != 0 {
			opts = append(opts, ipmitool.WithCipherSuite(strconv.Itoa(t.CipherSuite)))
		}
		host := t.Addr.String()
		if t.Addr.Is6() {
			host = "[" + host + "]"
		}
		c, err := ipmitool.New(host, t.Username, t.Password.Reveal(), opts...)
		if err != nil {
			return nil, fmt.Errorf("%w: ipmitool: %w", ErrUnsupported, err)
		}
		return &ipmitoolProvider{c: c}, nil
	}
}

// ipmitoolProvider gives bmclib's ipmitool provider rmm's power semantics:
// bmclib passes "cycle" and "reset" straight to ipmitool, whose meaning on
// an off chassis depends on the BMC.
type ipmitoolProvider struct{ c *ipmitool.Conn }

func (p *ipmitoolProvider) Name() string                    { return "ipmitool" }
func (p *ipmitoolProvider) Open(ctx context.Context) error  { return p.c.Open(ctx) }
func (p *ipmitoolProvider) Close(ctx context.Context) error { return p.c.Close(ctx) }
func (p *ipmitoolProvider) PowerStateGet(ctx context.Context) (string, error) {
	s, err := p.c.PowerStateGet(ctx)
	return string(ParsePowerState(s)), err
}

func (p *ipmitoolProvider) PowerSet(ctx context.Context, action string) (bool, error) {
	switch PowerAction(action) {
	case ActionCycle, ActionReset, ActionOff, ActionSoft:
		s, err := p.PowerStateGet(ctx)
		if err != nil {
			return false, NotSent(err)
		}
		if s == string(PowerOff) {
			switch PowerAction(action) {
			case ActionCycle:
				return p.c.PowerSet(ctx, "on")
			case ActionReset:
				return false, NotSent(Hinted(fmt.Errorf("%w: the host is off, there is nothing to reset", ErrUnsupported), "use 'rmm power on'"))
			default:
				return true, nil
			}
		}
	}
	return p.c.PowerSet(ctx, action)
}
