package ipmisim

import (
	"context"
	"encoding/binary"
	"sync"
	"time"

	gobmc "github.com/bougou/go-ipmi/pkg/bmc"
	"github.com/bougou/go-ipmi/pkg/types"

	"github.com/rmm-project/rmm/sim/machine"
)

// The System Event Log over IPMI (IPMI 2.0 chapter 31), on the machine's
// log. go-ipmi's BMC has none (Get SEL Info answers 0xC1).
//
// Reservations: Reserve SEL hands out a new ID and cancels the previous
// one; nothing else cancels it, so one reservation serves a whole "sel
// delete 1 2 3" and the status polls after a Clear SEL. It is required for
// Delete SEL Entry, Clear SEL (both operations) and partial Get SEL Entry
// reads (an offset, or fewer than all 16 bytes), and checked only there.

// Completion codes of the SEL commands.
const (
	codeReservationCanceled = types.CompletionCode(0xc5)
	codeNotPresent          = types.CompletionCode(0xcb)
	codeOutOfSpace          = types.CompletionCode(0xc4)
	codeRecordTypeRefused   = types.CompletionCode(0x80) // Add SEL Entry: record type not supported
	codeInvalidField        = types.CompletionCode(0xcc)
	codeLengthInvalid       = types.CompletionCode(0xc7)
	codeOutOfRange          = types.CompletionCode(0xc9)
)

// selState is the reservation of the SEL.
type selState struct {
	mu          sync.Mutex
	reservation uint16
	next        uint16
}

func (st *selState) reserve() uint16 {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.next++
	if st.next == 0 {
		st.next = 1
	}
	st.reservation = st.next
	return st.reservation
}

func (st *selState) valid(id uint16) bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	return id != 0 && id == st.reservation
}

// selTimestamp is the wire form of a SEL time: seconds since 1970, and
// 0xFFFFFFFF for "unspecified".
func selTimestamp(t time.Time) uint32 {
	if t.IsZero() {
		return 0xffffffff
	}
	return uint32(t.Unix())
}

// encodeSEL is a record's 16 wire bytes (IPMI 2.0 section 32).
func encodeSEL(r machine.SELRecord) []byte {
	b := make([]byte, 16)
	binary.LittleEndian.PutUint16(b[0:], r.ID)
	b[2] = r.RecordType
	switch {
	case r.RecordType >= 0xe0:
		copy(b[3:], r.OEM)
	case r.RecordType >= 0xc0:
		binary.LittleEndian.PutUint32(b[3:], selTimestamp(r.Time))
		copy(b[7:], r.OEM)
	default:
		binary.LittleEndian.PutUint32(b[3:], selTimestamp(r.Time))
		binary.LittleEndian.PutUint16(b[7:], r.GeneratorID)
		b[9] = 0x04 // event message format revision: IPMI 1.5 and later
		b[10] = r.SensorType
		b[11] = r.SensorNum
		b[12] = r.EventType
		copy(b[13:], r.EventData[:])
	}
	return b
}

// decodeSEL reads an Add SEL Entry record. The record ID and, for records
// the BMC time-stamps, the time stamp are the BMC's to set.
func decodeSEL(b []byte) machine.SELRecord {
	r := machine.SELRecord{RecordType: b[2]}
	switch {
	case r.RecordType >= 0xe0:
		r.OEM = append([]byte(nil), b[3:16]...)
	case r.RecordType >= 0xc0:
		r.OEM = append([]byte(nil), b[7:16]...)
	default:
		r.GeneratorID = binary.LittleEndian.Uint16(b[7:])
		r.SensorType = b[10]
		r.SensorNum = b[11]
		r.EventType = b[12]
		copy(r.EventData[:], b[13:16])
	}
	return r
}

// privilege reports the requester's session privilege (0 outside a
// session).
func privilege(hctx *handlersContext) gobmc.PrivilegeLevel {
	switch {
	case hctx.Session != nil:
		return hctx.Session.PrivilegeLevel
	case hctx.V15Session != nil:
		return hctx.V15Session.PrivilegeLevel
	}
	return 0
}

// canWriteSEL: changing the SEL takes an operator (IPMI 2.0 table G-1).
func canWriteSEL(hctx *handlersContext) bool {
	return privilege(hctx) >= gobmc.PrivilegeLevelOperator
}

func handleGetSELInfo(_ context.Context, hctx *handlersContext, _ []byte) ([]byte, types.CompletionCode, error) {
	st := simOf(hctx.BMC).m.SELStatus()
	b := make([]byte, 14)
	b[0] = 0x51
	binary.LittleEndian.PutUint16(b[1:], uint16(st.Entries))
	binary.LittleEndian.PutUint16(b[3:], uint16(min(0xfffe, (machine.SELCapacity-st.Entries)*16)))
	binary.LittleEndian.PutUint32(b[5:], selTimestamp(st.LastAdd))
	binary.LittleEndian.PutUint32(b[9:], selTimestamp(st.LastErase))
	b[13] = 0x0b // delete, reserve, get allocation info supported
	if st.Overflow {
		b[13] |= 0x80
	}
	return b, types.CodeOK, nil
}

func handleGetSELAllocInfo(_ context.Context, hctx *handlersContext, _ []byte) ([]byte, types.CompletionCode, error) {
	st := simOf(hctx.BMC).m.SELStatus()
	free := uint16(machine.SELCapacity - st.Entries)
	b := make([]byte, 9)
	binary.LittleEndian.PutUint16(b[0:], machine.SELCapacity)
	binary.LittleEndian.PutUint16(b[2:], 16)
	binary.LittleEndian.PutUint16(b[4:], free)
	binary.LittleEndian.PutUint16(b[6:], free)
	b[8] = 1 // one allocation unit per record
	return b, types.CodeOK, nil
}

func handleReserveSEL(_ context.Context, hctx *handlersContext, _ []byte) ([]byte, types.CompletionCode, error) {
	id := simOf(hctx.BMC).sel.reserve()
	return binary.LittleEndian.AppendUint16(nil, id), types.CodeOK, nil
}

// findSEL resolves a record ID (0x0000 first, 0xFFFF last) to an index.
func findSEL(sel []machine.SELRecord, id uint16) int {
	if len(sel) == 0 {
		return -1
	}
	switch id {
	case 0x0000:
		return 0
	case 0xffff:
		return len(sel) - 1
	}
	for i, r := range sel {
		if r.ID == id {
			return i
		}
	}
	return -1
}

func handleGetSELEntry(_ context.Context, hctx *handlersContext, req []byte) ([]byte, types.CompletionCode, error) {
	if len(req) < 6 {
		return nil, codeLengthInvalid, nil
	}
	s := simOf(hctx.BMC)
	reservation := binary.LittleEndian.Uint16(req[0:])
	id := binary.LittleEndian.Uint16(req[2:])
	offset, count := int(req[4]), int(req[5])
	if offset > 15 {
		return nil, codeOutOfRange, nil
	}
	partial := offset > 0 || (count != 0xff && count < 16)
	if partial && !s.sel.valid(reservation) {
		return nil, codeReservationCanceled, nil
	}
	sel := s.m.SEL()
	i := findSEL(sel, id)
	if i < 0 {
		return nil, codeNotPresent, nil
	}
	next := uint16(0xffff)
	if i+1 < len(sel) {
		next = sel[i+1].ID
	}
	rec := encodeSEL(sel[i])
	end := 16
	if count != 0xff {
		end = min(16, offset+count)
	}
	return append(binary.LittleEndian.AppendUint16(nil, next), rec[offset:end]...), types.CodeOK, nil
}

func handleAddSELEntry(_ context.Context, hctx *handlersContext, req []byte) ([]byte, types.CompletionCode, error) {
	if len(req) < 16 {
		return nil, codeLengthInvalid, nil
	}
	if !canWriteSEL(hctx) {
		return nil, types.CodeInsufficientPrivilege, nil
	}
	r := decodeSEL(req)
	if r.RecordType != 0x02 && r.RecordType < 0xc0 {
		return nil, codeRecordTypeRefused, nil
	}
	id := simOf(hctx.BMC).m.AddSEL(r)
	if id == 0 {
		return nil, codeOutOfSpace, nil
	}
	return binary.LittleEndian.AppendUint16(nil, id), types.CodeOK, nil
}

func handleDeleteSELEntry(_ context.Context, hctx *handlersContext, req []byte) ([]byte, types.CompletionCode, error) {
	if len(req) < 4 {
		return nil, codeLengthInvalid, nil
	}
	if !canWriteSEL(hctx) {
		return nil, types.CodeInsufficientPrivilege, nil
	}
	s := simOf(hctx.BMC)
	if !s.sel.valid(binary.LittleEndian.Uint16(req[0:])) {
		return nil, codeReservationCanceled, nil
	}
	sel := s.m.SEL()
	i := findSEL(sel, binary.LittleEndian.Uint16(req[2:]))
	if i < 0 || !s.m.DeleteSEL(sel[i].ID) {
		return nil, codeNotPresent, nil
	}
	return binary.LittleEndian.AppendUint16(nil, sel[i].ID), types.CodeOK, nil
}

// handleClearSEL implements Clear SEL: 'C' 'L' 'R', then 0xAA to erase or
// 0x00 for the erasure status. Erasing is instant, so the status is always
// "completed" (0x01).
func handleClearSEL(_ context.Context, hctx *handlersContext, req []byte) ([]byte, types.CompletionCode, error) {
	if len(req) < 6 {
		return nil, codeLengthInvalid, nil
	}
	s := simOf(hctx.BMC)
	if !s.sel.valid(binary.LittleEndian.Uint16(req[0:])) {
		return nil, codeReservationCanceled, nil
	}
	if req[2] != 'C' || req[3] != 'L' || req[4] != 'R' {
		return nil, codeInvalidField, nil
	}
	switch req[5] {
	case 0xaa:
		if !canWriteSEL(hctx) {
			return nil, types.CodeInsufficientPrivilege, nil
		}
		s.m.ClearSEL()
	case 0x00:
	default:
		return nil, codeInvalidField, nil
	}
	return []byte{0x01}, types.CodeOK, nil
}

func handleGetSELTime(_ context.Context, hctx *handlersContext, _ []byte) ([]byte, types.CompletionCode, error) {
	return binary.LittleEndian.AppendUint32(nil, uint32(simOf(hctx.BMC).m.SELTime().Unix())), types.CodeOK, nil
}

func handleSetSELTime(_ context.Context, hctx *handlersContext, req []byte) ([]byte, types.CompletionCode, error) {
	if len(req) < 4 {
		return nil, codeLengthInvalid, nil
	}
	if !canWriteSEL(hctx) {
		return nil, types.CodeInsufficientPrivilege, nil
	}
	simOf(hctx.BMC).m.SetSELTime(time.Unix(int64(binary.LittleEndian.Uint32(req)), 0))
	return nil, types.CodeOK, nil
}

// handleGetSELTimeUTCOffset: the SEL clock is UTC.
func handleGetSELTimeUTCOffset(context.Context, *handlersContext, []byte) ([]byte, types.CompletionCode, error) {
	return []byte{0, 0}, types.CodeOK, nil
}
