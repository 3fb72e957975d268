package ipmisim

import (
	"context"
	"encoding/hex"
	"fmt"
	"maps"
	"strings"
	"sync"

	"github.com/bougou/go-ipmi/pkg/handlers"
	"github.com/bougou/go-ipmi/pkg/types"
)

type handlersContext = handlers.HandlerContext

// registry is the command table every simulated BMC shares: go-ipmi's
// standard handlers, the ones this package adds or replaces, and a
// middleware that counts commands and tracks session privilege. Handlers
// find their BMC through the HAL (simOf), so one table serves a thousand
// BMCs; it is read-only once built, as go-ipmi requires.
var registry = sync.OnceValue(func() *handlers.Registry {
	r := handlers.NewRegistry()
	r.Use(observe) // before any Register: go-ipmi applies middleware at registration
	handlers.RegisterAllHandlers(r)

	// App: BMC resets must not touch the host (go-ipmi routes them to the
	// chassis HAL); Get System GUID is missing; Get Session Info only
	// knows the caller's own session.
	r.RegisterFunc(types.CommandColdReset, handleBMCReset)
	r.RegisterFunc(types.CommandWarmReset, handleBMCReset)
	r.RegisterFunc(types.CommandGetSystemGUID, handleGetSystemGUID)
	r.RegisterFunc(types.CommandGetSessionInfo, handleGetSessionInfo)

	// Storage: the SEL, and SDR repository info with stable time stamps.
	r.RegisterFunc(types.CommandGetSELInfo, handleGetSELInfo)
	r.RegisterFunc(types.CommandGetSELAllocInfo, handleGetSELAllocInfo)
	r.RegisterFunc(types.CommandReserveSEL, handleReserveSEL)
	r.RegisterFunc(types.CommandGetSELEntry, handleGetSELEntry)
	r.RegisterFunc(types.CommandAddSELEntry, handleAddSELEntry)
	r.RegisterFunc(types.CommandDeleteSELEntry, handleDeleteSELEntry)
	r.RegisterFunc(types.CommandClearSEL, handleClearSEL)
	r.RegisterFunc(types.CommandGetSELTime, handleGetSELTime)
	r.RegisterFunc(types.CommandSetSELTime, handleSetSELTime)
	r.RegisterFunc(types.CommandGetSELTimeUTCOffset, handleGetSELTimeUTCOffset)
	r.RegisterFunc(types.CommandGetSDRRepoInfo, handleGetSDRRepoInfo)

	// Sensor/Event: readings and thresholds (go-ipmi has no sensor
	// handlers at all).
	r.RegisterFunc(types.CommandGetSensorReading, handleGetSensorReading)
	r.RegisterFunc(types.CommandGetSensorThresholds, handleGetSensorThresholds)
	r.RegisterFunc(types.CommandGetSensorHysteresis, handleGetSensorHysteresis)
	r.RegisterFunc(types.CommandGetSensorEventEnable, handleGetSensorEventEnable)
	return r
})

// v15Registry holds go-ipmi's own Get Session Info, which knows IPMI v1.5
// sessions.
var v15Registry = sync.OnceValue(func() *handlers.Registry {
	r := handlers.NewRegistry()
	handlers.RegisterSessionHandlers(r)
	return r
})

// observe counts every dispatched command (unknown ones included), marks
// Close Session so the removal hook can tell a close from an expiry, counts
// SOL activations and keeps the session snapshot's privilege current.
func observe(next handlers.Handler) handlers.Handler {
	return handlers.HandlerFunc(func(ctx context.Context, hctx *handlersContext, req []byte) ([]byte, types.CompletionCode, error) {
		s := simOf(hctx.BMC)
		c := Command{NetFn: uint8(hctx.Command.NetFn), Cmd: hctx.Command.ID}
		closing := c == CmdCloseSession && len(req) >= 4
		if closing {
			s.sess.closing(le32(req), true)
		}
		resp, cc, err := next.Handle(ctx, hctx, req)
		s.cmds.add(c)
		if closing && cc != types.CodeOK {
			s.sess.closing(le32(req), false)
		}
		if c == CmdActivatePayload && cc == types.CodeOK {
			s.sess.solActivated()
		}
		if hctx.Session != nil {
			s.sess.observed(hctx.Session)
		}
		return resp, cc, err
	})
}

// commandCounter counts commands by NetFn/Cmd. A map, not a table: most
// BMCs see a handful of distinct commands.
type commandCounter struct {
	mu sync.Mutex
	m  map[Command]uint64
}

func (c *commandCounter) add(cmd Command) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[Command]uint64{}
	}
	c.m[cmd]++
}

func (c *commandCounter) snapshot() map[Command]uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.m)
}

// handleBMCReset acknowledges App Cold/Warm Reset, which reset the BMC and
// never the host. The simulated BMC has no state worth losing.
func handleBMCReset(context.Context, *handlersContext, []byte) ([]byte, types.CompletionCode, error) {
	return nil, types.CodeOK, nil
}

// handleGetSystemGUID answers Get System GUID (IPMI 2.0 section 22.14)
// with the machine's GUID, in the IPMI byte order (see guidBytes).
func handleGetSystemGUID(_ context.Context, hctx *handlersContext, _ []byte) ([]byte, types.CompletionCode, error) {
	g := hctx.BMC.GUID
	return g[:], types.CodeOK, nil
}

// guidBytes encodes a GUID string ("8-4-4-4-12" hex) the way the IPMI
// specification (section 20.8) lays it out on the wire: the RFC 4122 byte
// sequence reversed, least significant byte of the node first. ipmitool's
// "mc guid" decodes that (its "ipmi" encoding) and, for a version 4 GUID,
// auto-detects it, printing the string back unchanged; the same bytes go
// into RAKP 2 as the managed system GUID.
func guidBytes(s string) ([16]byte, error) {
	var out [16]byte
	raw, err := hex.DecodeString(strings.ReplaceAll(s, "-", ""))
	if err != nil || len(raw) != 16 || len(s) != 36 {
		return out, fmt.Errorf("guid %q: want 8-4-4-4-12 hex digits", s)
	}
	for i := range 16 {
		out[i] = raw[15-i]
	}
	return out, nil
}
