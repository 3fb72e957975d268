package testbmc

import (
	"context"
	"encoding/binary"
	"sync"

	"github.com/bougou/go-ipmi/pkg/handlers"
	"github.com/bougou/go-ipmi/pkg/types"
)

// SEL is an in-memory System Event Log served by the test BMC's SEL
// handlers (go-ipmi's BMC has none: Get SEL Info answers C1h).
type SEL struct {
	mu          sync.Mutex
	records     [][16]byte
	nextID      uint16
	reservation uint16
	clearPolls  int // Clear SEL status polls answered "in progress" so far
	slowClear   int // see SetClearPolls
	unsupported bool
}

// SetClearPolls makes Clear SEL report "erasure in progress" to n status
// polls before completing.
func (s *SEL) SetClearPolls(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.slowClear = n
}

// SetUnsupported makes every SEL command answer C1h (invalid command), as
// go-ipmi's BMC does without these handlers.
func (s *SEL) SetUnsupported(v bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.unsupported = v
}

// Add appends a record (its first two bytes, the record ID, are assigned).
func (s *SEL) Add(rec [16]byte) uint16 {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nextID++
	binary.LittleEndian.PutUint16(rec[0:], s.nextID)
	s.records = append(s.records, rec)
	return s.nextID
}

// Len returns the number of records.
func (s *SEL) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.records)
}

// Sensors holds Get Sensor Reading answers by sensor number.
type Sensors struct {
	mu       sync.Mutex
	Readings map[uint8][]byte
}

// Set sets the reading bytes returned for a sensor.
func (s *Sensors) Set(num uint8, resp ...byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.Readings[num] = resp
}

// Chassis records the Chassis Control commands the BMC received and gives
// them a real machine's effect on power (go-ipmi's own handler only counts
// cycles and resets): 0 off, 1 on, 2 cycle (off, then on), 3 hard reset
// (power stays), 5 soft off (the OS shuts down).
type Chassis struct {
	mu       sync.Mutex
	controls []uint8
}

// Controls returns the Chassis Control values received, in order.
func (c *Chassis) Controls() []uint8 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]uint8(nil), c.controls...)
}

func (t *BMC) chassisControl(ctx context.Context, h *handlers.HandlerContext, req []byte) ([]byte, types.CompletionCode, error) {
	if len(req) < 1 {
		return nil, types.CodeRequestDataLengthInvalid, nil
	}
	ch := t.HAL.Chassis()
	switch ctl := req[0] & 0x0f; ctl {
	case 0, 5:
		_ = ch.SetPower(ctx, false)
	case 1, 2:
		_ = ch.SetPower(ctx, true)
	case 3:
	default:
		return nil, types.CodeRequestDataFieldInvalid, nil
	}
	t.Chassis.mu.Lock()
	t.Chassis.controls = append(t.Chassis.controls, req[0]&0x0f)
	t.Chassis.mu.Unlock()
	return nil, types.CodeOK, nil
}

func (t *BMC) register(r *handlers.Registry) {
	r.RegisterFunc(types.CommandChassisControl, t.chassisControl)
	r.RegisterFunc(types.CommandGetSystemGUID, func(context.Context, *handlers.HandlerContext, []byte) ([]byte, types.CompletionCode, error) {
		t.mu.Lock()
		defer t.mu.Unlock()
		g := t.guid
		return g[:], types.CodeOK, nil
	})
	r.RegisterFunc(types.CommandGetFRUInventoryAreaInfo, t.FRU.info)
	r.RegisterFunc(types.CommandReadFRUData, t.FRU.read)
	r.RegisterFunc(types.CommandGetSELInfo, t.selInfo)
	r.RegisterFunc(types.CommandReserveSEL, t.selReserve)
	r.RegisterFunc(types.CommandGetSELEntry, t.selGet)
	r.RegisterFunc(types.CommandClearSEL, t.selClear)
	r.RegisterFunc(types.CommandGetSensorReading, func(_ context.Context, _ *handlers.HandlerContext, req []byte) ([]byte, types.CompletionCode, error) {
		if len(req) < 1 {
			return nil, types.CodeRequestDataLengthInvalid, nil
		}
		t.Sensors.mu.Lock()
		defer t.Sensors.mu.Unlock()
		resp, ok := t.Sensors.Readings[req[0]]
		if !ok {
			return nil, types.CodeRequestedDataNotPresent, nil
		}
		return append([]byte(nil), resp...), types.CodeOK, nil
	})
}

func (t *BMC) selInfo(context.Context, *handlers.HandlerContext, []byte) ([]byte, types.CompletionCode, error) {
	s := t.SEL
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.unsupported {
		return nil, types.CodeInvalidCommand, nil
	}
	resp := make([]byte, 14)
	resp[0] = 0x51
	binary.LittleEndian.PutUint16(resp[1:], uint16(len(s.records)))
	binary.LittleEndian.PutUint16(resp[3:], uint16(16*(1000-len(s.records))))
	resp[13] = 0x0a // reserve and delete supported
	return resp, types.CodeOK, nil
}

func (t *BMC) selReserve(context.Context, *handlers.HandlerContext, []byte) ([]byte, types.CompletionCode, error) {
	s := t.SEL
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.unsupported {
		return nil, types.CodeInvalidCommand, nil
	}
	s.reservation++
	if s.reservation == 0 {
		s.reservation = 1
	}
	return binary.LittleEndian.AppendUint16(nil, s.reservation), types.CodeOK, nil
}

func (t *BMC) selGet(_ context.Context, _ *handlers.HandlerContext, req []byte) ([]byte, types.CompletionCode, error) {
	s := t.SEL
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.unsupported {
		return nil, types.CodeInvalidCommand, nil
	}
	if len(req) < 6 {
		return nil, types.CodeRequestDataLengthInvalid, nil
	}
	resv := binary.LittleEndian.Uint16(req[0:])
	id := binary.LittleEndian.Uint16(req[2:])
	off, n := int(req[4]), int(req[5])
	if off != 0 && resv != s.reservation {
		return nil, types.CodeReservationCanceled, nil
	}
	if len(s.records) == 0 {
		return nil, types.CodeRequestedDataNotPresent, nil
	}
	i := -1
	switch id {
	case 0x0000:
		i = 0
	case 0xffff:
		i = len(s.records) - 1
	default:
		for k, r := range s.records {
			if binary.LittleEndian.Uint16(r[0:]) == id {
				i = k
			}
		}
	}
	if i < 0 {
		return nil, types.CodeRequestedDataNotPresent, nil
	}
	next := uint16(0xffff)
	if i+1 < len(s.records) {
		next = binary.LittleEndian.Uint16(s.records[i+1][0:])
	}
	if n == 0xff {
		n = 16 - off
	}
	if off > 16 || off+n > 16 {
		return nil, types.CodeParameterOutOfRange, nil
	}
	resp := binary.LittleEndian.AppendUint16(nil, next)
	return append(resp, s.records[i][off:off+n]...), types.CodeOK, nil
}

func (t *BMC) selClear(_ context.Context, _ *handlers.HandlerContext, req []byte) ([]byte, types.CompletionCode, error) {
	s := t.SEL
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.unsupported {
		return nil, types.CodeInvalidCommand, nil
	}
	if len(req) < 6 || req[2] != 'C' || req[3] != 'L' || req[4] != 'R' {
		return nil, types.CodeRequestDataFieldInvalid, nil
	}
	if binary.LittleEndian.Uint16(req[0:]) != s.reservation {
		return nil, types.CodeReservationCanceled, nil
	}
	switch req[5] {
	case 0xaa: // initiate erase
		s.records = nil
		s.clearPolls = 0
		if s.slowClear > 0 {
			return []byte{0x00}, types.CodeOK, nil
		}
		return []byte{0x01}, types.CodeOK, nil
	case 0x00: // get erasure status
		if s.clearPolls < s.slowClear {
			s.clearPolls++
			return []byte{0x00}, types.CodeOK, nil
		}
		return []byte{0x01}, types.CodeOK, nil
	}
	return nil, types.CodeRequestDataFieldInvalid, nil
}
