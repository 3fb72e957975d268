package ipmi

import (
	"context"
	"fmt"

	"github.com/bougou/go-ipmi/pkg/command/chassis"
	"github.com/bougou/go-ipmi/pkg/types"
	"github.com/rmm-project/rmm/bmc"
)

// PowerStateGet reads Get Chassis Status and returns "on" or "off". It runs
// at the session's initial privilege: a status read needs only USER, so it
// costs no Set Session Privilege Level round trip.
func (p *Provider) PowerStateGet(ctx context.Context) (string, error) {
	on, err := p.powerIsOn(ctx)
	if err != nil {
		return "", err
	}
	if on {
		return string(bmc.PowerOn), nil
	}
	return string(bmc.PowerOff), nil
}

func (p *Provider) powerIsOn(ctx context.Context) (bool, error) {
	s, err := p.session()
	if err != nil {
		return false, err
	}
	var resp chassis.GetChassisStatusResponse
	if err := s.Do(ctx, &chassis.GetChassisStatusRequest{}, &resp); err != nil {
		return false, err
	}
	return resp.PowerIsOn, nil
}

// hintError is an error with a hint for the CLI's "hint:" line.
type hintError struct {
	err  error
	hint string
}

// Error returns the wrapped error's text; the hint goes on its own line.
func (e *hintError) Error() string { return e.err.Error() }

// Unwrap returns the wrapped error.
func (e *hintError) Unwrap() error { return e.err }

// Hint is read by bmc.Target.Wrap.
func (e *hintError) Hint() string { return e.hint }

// PowerSet performs a bmc.PowerAction with the semantics documented there:
// on and off succeed when the host is already in that state, cycle powers
// an off host on, reset refuses an off host, soft succeeds when off. It
// reads the power state first (every verb but a plain on/off needs it, and
// for those it saves a needless command), raises the session privilege,
// then sends Chassis Control once: it is retransmitted only after a full
// second, so a slow BMC does not cycle a host twice.
func (p *Provider) PowerSet(ctx context.Context, action string) (bool, error) {
	a := bmc.PowerAction(action)
	on, err := p.powerIsOn(ctx)
	if err != nil {
		return false, bmc.NotSent(err)
	}
	var ctl chassis.ChassisControl
	switch a {
	case bmc.ActionOn:
		if on {
			return true, nil
		}
		ctl = chassis.ChassisControlPowerUp
	case bmc.ActionOff:
		if !on {
			return true, nil
		}
		ctl = chassis.ChassisControlPowerDown
	case bmc.ActionCycle:
		ctl = chassis.ChassisControlPowerCycle
		if !on {
			ctl = chassis.ChassisControlPowerUp
		}
	case bmc.ActionReset:
		if !on {
			return false, bmc.NotSent(&hintError{
				err:  fmt.Errorf("%w: power reset: the host is off; a reset needs a running host", bmc.ErrUnsupported),
				hint: "use 'power on' to start a host that is off",
			})
		}
		ctl = chassis.ChassisControlHardReset
	case bmc.ActionSoft:
		if !on {
			return true, nil
		}
		ctl = chassis.ChassisControlSoftShutdown
	default:
		return false, bmc.NotSent(fmt.Errorf("%w: unknown power action %q", bmc.ErrUnsupported, action))
	}
	s, err := p.session()
	if err != nil {
		return false, bmc.NotSent(err)
	}
	if err := s.EnsurePrivilege(ctx, types.PrivilegeLevelAdministrator); err != nil {
		return false, bmc.NotSent(fmt.Errorf("power %s: %w", a, err))
	}
	if err := s.DoOnce(ctx, &chassis.ChassisControlRequest{ChassisControl: ctl}, nil); err != nil {
		return false, fmt.Errorf("power %s: %w", a, err)
	}
	return true, nil
}
