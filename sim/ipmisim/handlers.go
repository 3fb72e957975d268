package ipmisim

import (
	"context"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

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
// with the machine's GUID, laid out as guidBytes chose at start.
func handleGetSystemGUID(_ context.Context, hctx *handlersContext, _ []byte) ([]byte, types.CompletionCode, error) {
	g := hctx.BMC.GUID
	return g[:], types.CodeOK, nil
}

// guidBytes encodes a GUID string ("8-4-4-4-12" hex) for Get System GUID
// and RAKP 2 so that the string ipmitool's "mc guid" prints (and rmm's IPMI
// Identity reports as GUID and UUID) is s itself: one machine, one identity
// over IPMI and Redfish. The IPMI specification's layout (section 20.8: the
// RFC 4122 byte sequence reversed) comes first. ipmitool cannot know which
// layout a BMC uses and guesses from the version nibble (ipmitoolGUID).
// When its guess would read those bytes as another string, the SMBIOS
// layout (first three fields little-endian), then the RFC 4122 one, is
// used instead, whichever reads back as s: that rescues UUIDs of the
// pre-RFC 4122 variants, whose variant nibble reads as a version 1-5 in
// the SMBIOS decoding of the IPMI layout. Two kinds of string no layout
// reads back as: those without a version 1-5 (ipmitool prints 32 hex
// digits, as it would from a real BMC), and the rare RFC 4122 UUID whose
// clock sequence also reads as a plausible time-based UUID in the IPMI
// decoding, which every layout leaves in place (machine.DerivedIdentity
// never makes one). Those stay in the IPMI layout. now is the current time
// (ipmitool's guess depends on the year).
func guidBytes(s string, now time.Time) ([16]byte, error) {
	var out [16]byte
	raw, err := hex.DecodeString(strings.ReplaceAll(s, "-", ""))
	if err != nil || len(raw) != 16 || len(s) != 36 || strings.Count(s, "-") != 4 {
		return out, fmt.Errorf("guid %q: want 8-4-4-4-12 hex digits", s)
	}
	want := strings.ToLower(s)
	layouts := [][16]byte{guidLayout(raw, guidIPMI), guidLayout(raw, guidSMBIOS), guidLayout(raw, guidRFC4122)}
	for _, b := range layouts {
		if ipmitoolGUID(b, now) == want {
			return b, nil
		}
	}
	return layouts[0], nil
}

// GUID byte layouts, in ipmitool's probing order.
const (
	guidRFC4122 = iota // all fields big-endian: the string's own order
	guidIPMI           // the whole 16 bytes reversed
	guidSMBIOS         // time_low, time_mid, time_hi little-endian
)

// guidLayout lays out raw (the string's bytes, RFC 4122 order) in mode.
func guidLayout(raw []byte, mode int) [16]byte {
	var b [16]byte
	copy(b[:], raw)
	switch mode {
	case guidIPMI:
		for i := range 16 {
			b[i] = raw[15-i]
		}
	case guidSMBIOS:
		slices.Reverse(b[0:4])
		slices.Reverse(b[4:6])
		slices.Reverse(b[6:8])
	}
	return b
}

// ipmitoolGUID is what ipmitool 1.8.19's "mc guid" prints for b in its
// default auto mode: each layout whose version nibble is 1-5 is a
// candidate and the last one wins, except that a version 1 candidate whose
// time stamp falls in [1970, this year] wins at once; without a candidate
// it prints the bytes as 32 upper-case hex digits. (bmc/ipmi.FormatGUID
// is the client's copy, checked against ipmitool itself; the simulator
// keeps its own so that it never imports the client it tests.)
func ipmitoolGUID(b [16]byte, now time.Time) string {
	var best [16]byte
	found := false
	for _, mode := range []int{guidRFC4122, guidIPMI, guidSMBIOS} {
		// Undo the layout: back to the string's byte order.
		var r [16]byte
		switch mode {
		case guidIPMI:
			for i := range 16 {
				r[i] = b[15-i]
			}
		case guidSMBIOS:
			r = guidLayout(b[:], guidSMBIOS) // the swap is its own inverse
		default:
			r = b
		}
		v := r[6] >> 4
		if v < 1 || v > 5 {
			continue
		}
		best, found = r, true
		if v == 1 {
			ts := uint64(r[6]&0x0f)<<56 | uint64(r[7])<<48 | uint64(r[4])<<40 | uint64(r[5])<<32 |
				uint64(r[0])<<24 | uint64(r[1])<<16 | uint64(r[2])<<8 | uint64(r[3])
			y := time.Unix(int64(ts/10_000_000)-12_219_292_800, 0).UTC().Year()
			if y >= 1970 && y <= now.UTC().Year() {
				break
			}
		}
	}
	if !found {
		return fmt.Sprintf("%X", b[:])
	}
	return fmt.Sprintf("%x-%x-%x-%x-%x", best[0:4], best[4:6], best[6:8], best[8:10], best[10:16])
}
