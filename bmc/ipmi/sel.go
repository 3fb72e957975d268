package ipmi

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/bougou/go-ipmi/pkg/types"
	"github.com/rmm-project/rmm/bmc"
	"github.com/rmm-project/rmm/bmc/ipmi/rmcp"
)

// Bounds of SEL operations. A SEL holds at most a few thousand records
// (the entry count is 16 bits, the space 64 KiB); a walk past maxSEL is a
// BMC handing out a loop. Clear SEL is polled for at most clearPolls x
// clearPollEvery.
const (
	maxSEL         = 4096
	selRecordLen   = 16
	clearPolls     = 20
	clearPollEvery = 100 * time.Millisecond
)

// SEL reads the System Event Log, oldest first: Get SEL Info, Reserve SEL,
// then Get SEL Entry from the first record until the BMC says FFFFh. Each
// record is decoded like ipmitool's "sel elist" (sensor names from the SDR
// repository when the BMC has one) and keeps its raw bytes.
func (p *Provider) SEL(ctx context.Context) ([]bmc.SELEntry, error) {
	s, err := p.session()
	if err != nil {
		return nil, err
	}
	info, err := s.Raw(ctx, types.NetFnStorageRequest, types.CommandGetSELInfo.ID, nil)
	if err != nil {
		return nil, fmt.Errorf("sel info: %w", err)
	}
	if len(info) < 3 {
		return nil, fmt.Errorf("%w: sel info: %d-byte answer", bmc.ErrProtocol, len(info))
	}
	count := int(binary.LittleEndian.Uint16(info[1:]))
	if count == 0 {
		return nil, nil
	}
	resv, err := reserveSEL(ctx, s)
	if err != nil {
		return nil, err
	}
	var raws [][selRecordLen]byte
	id := uint16(0x0000)
	for i := 0; ; i++ {
		if i >= min(count+16, maxSEL) {
			return nil, fmt.Errorf("%w: sel: the bmc listed more than %d records (record ids loop?)", bmc.ErrProtocol, min(count+16, maxSEL))
		}
		next, rec, err := getSELEntry(ctx, s, &resv, id)
		if err != nil {
			if rmcp.IsCompletion(err, 0xcb) && i == 0 {
				return nil, nil // emptied since Get SEL Info
			}
			return nil, fmt.Errorf("sel record %#04x: %w", id, err)
		}
		raws = append(raws, rec)
		if next == 0xffff || next == id {
			break
		}
		id = next
	}
	// Sensor names are a nicety: a BMC whose SDR repository cannot be read
	// still has a readable SEL.
	sdrs, _ := p.sensorRecords(ctx)
	return decodeSEL(raws, sdrs), nil
}

// reserveSEL returns a reservation ID, 0 when the BMC does not do
// reservations (reads of whole records need none).
func reserveSEL(ctx context.Context, s *rmcp.Session) (uint16, error) {
	d, err := s.Raw(ctx, types.NetFnStorageRequest, types.CommandReserveSEL.ID, nil)
	switch {
	case err == nil && len(d) >= 2:
		return binary.LittleEndian.Uint16(d), nil
	case err == nil, rmcp.IsCompletion(err, 0xc1):
		return 0, nil
	}
	return 0, fmt.Errorf("reserve sel: %w", err)
}

// getSELEntry reads one whole record, re-reserving (bounded) when the BMC
// cancelled the reservation.
func getSELEntry(ctx context.Context, s *rmcp.Session, resv *uint16, id uint16) (uint16, [selRecordLen]byte, error) {
	var rec [selRecordLen]byte
	for try := 0; ; try++ {
		req := []byte{byte(*resv), byte(*resv >> 8), byte(id), byte(id >> 8), 0, 0xff}
		d, err := s.Raw(ctx, types.NetFnStorageRequest, types.CommandGetSELEntry.ID, req)
		if err != nil {
			if rmcp.IsCompletion(err, 0xc5) && try < maxResvRetries {
				if *resv, err = reserveSEL(ctx, s); err != nil {
					return 0, rec, err
				}
				continue
			}
			return 0, rec, err
		}
		if len(d) < 2+selRecordLen {
			return 0, rec, fmt.Errorf("%w: get sel entry: %d-byte answer, want %d", bmc.ErrProtocol, len(d), 2+selRecordLen)
		}
		copy(rec[:], d[2:])
		return binary.LittleEndian.Uint16(d), rec, nil
	}
}

// ClearSEL erases the System Event Log: Reserve SEL, Clear SEL "initiate
// erase", then "get erasure status" until the BMC reports completion
// (bounded to about 2 s). Clearing needs OPERATOR, so the session's
// privilege is raised first.
func (p *Provider) ClearSEL(ctx context.Context) error {
	s, err := p.session()
	if err != nil {
		return err
	}
	if err := s.EnsurePrivilege(ctx, types.PrivilegeLevelAdministrator); err != nil {
		return fmt.Errorf("clear sel: %w", err)
	}
	resv, err := reserveSEL(ctx, s)
	if err != nil {
		return fmt.Errorf("clear sel: %w", err)
	}
	clear := func(op byte) (byte, error) {
		d, err := s.Raw(ctx, types.NetFnStorageRequest, types.CommandClearSEL.ID,
			[]byte{byte(resv), byte(resv >> 8), 'C', 'L', 'R', op})
		if err != nil {
			return 0, err
		}
		if len(d) < 1 {
			return 0, fmt.Errorf("%w: clear sel: empty answer", bmc.ErrProtocol)
		}
		return d[0] & 0x0f, nil
	}
	status, err := clear(0xaa)
	if err != nil {
		return fmt.Errorf("clear sel: %w", err)
	}
	for i := 0; status != 0x01; i++ {
		if i >= clearPolls {
			return fmt.Errorf("%w: clear sel: erasure still in progress after %s", bmc.ErrTimeout, clearPolls*clearPollEvery)
		}
		t := time.NewTimer(clearPollEvery)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("clear sel: %w", ctx.Err())
		case <-t.C:
		}
		if status, err = clear(0x00); err != nil {
			return fmt.Errorf("clear sel: erasure status: %w", err)
		}
	}
	return nil
}

// asCompletion reports whether err carries an IPMI completion code.
func asCompletion(err error, ce **rmcp.CompletionError) bool { return errors.As(err, ce) }
