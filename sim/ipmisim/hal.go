package ipmisim

import (
	"context"
	"errors"
	"io"
	"slices"
	"sync"

	"github.com/bougou/go-ipmi/pkg/hal"
	"github.com/bougou/go-ipmi/pkg/types"
)

// simHAL is go-ipmi's hardware abstraction over the simulated machine. The
// reference mock HAL keeps its own power flag and only counts cycles and
// resets; this one drives *machine.Machine, so a cycle really turns the
// host off and on again and a reset reboots it.
type simHAL struct {
	s       *BMC
	chassis *chassisHAL
	console *consoleHAL
	storage *storageHAL
}

func newHAL(s *BMC) *simHAL {
	return &simHAL{
		s:       s,
		chassis: &chassisHAL{s: s},
		console: &consoleHAL{s: s},
		storage: newStorage(s),
	}
}

func (h *simHAL) Chassis() hal.ChassisHAL { return h.chassis }

// Sensors is nil: sensor commands are answered by this package's own
// handlers (go-ipmi registers none), from the machine's sensors.
func (h *simHAL) Sensors() hal.SensorHAL      { return nil }
func (h *simHAL) Storage() hal.StorageHAL     { return h.storage }
func (h *simHAL) Network() hal.NetworkHAL     { return nil }
func (h *simHAL) GPIO() hal.GPIOHAL           { return nil }
func (h *simHAL) I2C() hal.I2CHAL             { return nil }
func (h *simHAL) Console() hal.ConsoleHAL     { return h.console }
func (h *simHAL) Close() error                { return nil }
func simOf(b interface{ HAL() hal.HAL }) *BMC { return b.HAL().(*simHAL).s }

// chassisHAL maps Chassis Control (IPMI 2.0 table 28-4) onto the machine
// with the semantics of bmc.PowerAction: on and off are idempotent, cycle
// is off-then-on after the machine's cycle delay (and powers on an off
// machine), hard reset fails on an off machine, soft-off is an ACPI
// shutdown.
type chassisHAL struct {
	s *BMC

	mu       sync.Mutex
	identify uint8
	boot     *types.BootOptionParam_BootFlags
	bootAck  *types.BootOptionParam_BootInfoAcknowledge
}

// codeNotInState is completion code 0xD5, "command not supported in present
// state": what BMCs answer to a hard reset of a powered-off host.
const codeNotInState = types.CompletionCode(0xd5)

func (c *chassisHAL) PowerState(context.Context) (bool, error) { return c.s.m.PowerOn(), nil }

func (c *chassisHAL) SetPower(_ context.Context, on bool) error {
	c.s.m.SetPower(on)
	return nil
}

func (c *chassisHAL) PowerCycle(context.Context) error {
	c.s.m.Cycle()
	return nil
}

// ColdReset is Chassis Control "hard reset". (App Cold Reset, a reset of
// the BMC itself, has its own handler and never reaches the host.)
func (c *chassisHAL) ColdReset(context.Context) error {
	if !c.s.m.Reset() {
		return codeNotInState
	}
	return nil
}

// WarmReset is Chassis Control "soft shutdown" (go-ipmi routes it here).
func (c *chassisHAL) WarmReset(context.Context) error {
	c.s.m.SoftOff()
	return nil
}

func (c *chassisHAL) Identify(_ context.Context, seconds uint8) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.identify = seconds
	return nil
}

func (c *chassisHAL) IntrusionState(context.Context) (bool, error) { return false, hal.ErrNotSupported }

func (c *chassisHAL) SetBootFlags(_ context.Context, f *types.BootOptionParam_BootFlags) error {
	if f == nil {
		return hal.ErrNotSupported
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	cp := *f
	c.boot = &cp
	return nil
}

func (c *chassisHAL) GetBootFlags(context.Context) (*types.BootOptionParam_BootFlags, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.boot == nil {
		return &types.BootOptionParam_BootFlags{}, nil
	}
	cp := *c.boot
	return &cp, nil
}

func (c *chassisHAL) SetBootInfoAcknowledge(_ context.Context, a *types.BootOptionParam_BootInfoAcknowledge) error {
	if a == nil {
		return hal.ErrNotSupported
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	cp := *a
	c.bootAck = &cp
	return nil
}

func (c *chassisHAL) GetBootInfoAcknowledge(context.Context) (*types.BootOptionParam_BootInfoAcknowledge, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.bootAck == nil {
		return &types.BootOptionParam_BootInfoAcknowledge{}, nil
	}
	cp := *c.bootAck
	return &cp, nil
}

// consoleHAL is the host's serial port as SOL sees it: output comes from
// the machine's console, keystrokes go to Console.Type. One activation at
// a time, as a serial port has one other end.
type consoleHAL struct {
	s *BMC

	mu       sync.Mutex
	attached bool
}

var errConsoleAttached = errors.New("serial console already attached to a SOL session")

func (c *consoleHAL) Open(context.Context) (hal.ConsoleConn, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.attached {
		return nil, errConsoleAttached
	}
	con := c.s.m.Console()
	ch, stop := con.Subscribe()
	cc := &consoleConn{hal: c, ch: ch, stop: stop}
	if n := c.s.cfg.SOLReplay; n > 0 {
		h := con.History()
		cc.pending = []byte(h[max(0, len(h)-n):])
	}
	c.attached = true
	return cc, nil
}

// consoleConn is one SOL activation's end of the serial port.
type consoleConn struct {
	hal  *consoleHAL
	ch   <-chan []byte
	stop func()

	mu      sync.Mutex
	pending []byte
	closed  bool
	eof     bool
	breaks  int
}

// consoleBacklog bounds output waiting for the SOL pump; the machine's
// console drops for slow readers beyond it, as a serial port does.
const consoleBacklog = 64 << 10

// ReadAvailable never blocks (go-ipmi's pump polls it every 10 ms).
func (c *consoleConn) ReadAvailable(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return 0, io.ErrClosedPipe
	}
drain:
	for len(c.pending) < consoleBacklog {
		select {
		case b, ok := <-c.ch:
			if !ok {
				c.eof = true
				break drain
			}
			c.pending = append(c.pending, b...)
		default:
			break drain
		}
	}
	if len(c.pending) == 0 && c.eof {
		return 0, io.EOF // the machine was closed
	}
	n := copy(p, c.pending)
	c.pending = c.pending[n:]
	if len(c.pending) == 0 {
		c.pending = nil
	}
	return n, nil
}

func (c *consoleConn) Write(b []byte) (int, error) {
	c.mu.Lock()
	closed := c.closed
	c.mu.Unlock()
	if closed {
		return 0, io.ErrClosedPipe
	}
	c.hal.s.m.Console().Type(slices.Clone(b))
	return len(b), nil
}

func (c *consoleConn) SendBreak(context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.breaks++
	return nil
}

func (c *consoleConn) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	c.mu.Unlock()
	c.stop()
	c.hal.mu.Lock()
	c.hal.attached = false
	c.hal.mu.Unlock()
	return nil
}
