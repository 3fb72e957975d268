package ipmi

import (
	"context"
	"encoding/binary"
	"fmt"
	"strings"

	"github.com/bougou/go-ipmi/pkg/types"
	"github.com/rmm-project/rmm/bmc"
	"github.com/rmm-project/rmm/bmc/ipmi/rmcp"
)

// Limits of an SDR repository walk: no real BMC has more than a few
// hundred records, so a walk that has not ended by maxSDRs is looping.
const (
	maxSDRs        = 1024
	sdrChunk       = 16 // bytes per partial Get SDR; every BMC accepts 16
	sdrHeaderLen   = 5
	maxResvRetries = 3
)

// sdrSet is a BMC's SDR repository as far as rmm needs it: sensor records
// (full, compact, event-only) parsed by go-ipmi, indexed by the key a SEL
// event names its sensor by.
type sdrSet struct {
	sensors []*types.SDR
	byKey   map[sensorKey]*types.SDR
}

// sensorKey identifies a sensor: owner ID (slave address or software ID,
// bit 0 set for software), owner LUN, sensor number.
type sensorKey struct{ owner, lun, num uint8 }

// name returns the SDR name of a sensor, or "".
func (s *sdrSet) name(k sensorKey) string {
	if s == nil {
		return ""
	}
	if r, ok := s.byKey[k]; ok {
		return strings.TrimRight(r.SensorName(), "\x00 ")
	}
	return ""
}

// sensorRecords reads the SDR repository once per session. A BMC without one (Get
// SDR Repository Info answers C1h) has an empty set, not an error.
func (p *Provider) sensorRecords(ctx context.Context) (*sdrSet, error) {
	p.mu.Lock()
	cached := p.sdrs
	p.mu.Unlock()
	if cached != nil {
		return cached, nil
	}
	s, err := p.session()
	if err != nil {
		return nil, err
	}
	set, err := readSDRs(ctx, s)
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	p.sdrs = set
	p.mu.Unlock()
	return set, nil
}

func readSDRs(ctx context.Context, s *rmcp.Session) (*sdrSet, error) {
	set := &sdrSet{byKey: map[sensorKey]*types.SDR{}}
	info, err := s.Raw(ctx, types.NetFnStorageRequest, types.CommandGetSDRRepoInfo.ID, nil)
	if err != nil {
		if rmcp.IsCompletion(err, 0xc1) {
			return set, nil
		}
		return nil, fmt.Errorf("sdr repository info: %w", err)
	}
	if len(info) < 3 {
		return nil, fmt.Errorf("%w: sdr repository info: %d-byte answer", bmc.ErrProtocol, len(info))
	}
	count := int(binary.LittleEndian.Uint16(info[1:]))
	r := &sdrReader{s: s}
	if err := r.reserve(ctx); err != nil {
		return nil, err
	}
	id := uint16(0x0000)
	for i := 0; i < min(count+16, maxSDRs); i++ {
		next, rec, err := r.record(ctx, id)
		if err != nil {
			if rmcp.IsCompletion(err, 0xcb) && i == 0 {
				return set, nil // empty repository
			}
			return nil, fmt.Errorf("sdr record %#04x: %w", id, err)
		}
		set.add(rec)
		if next == 0xffff || next == id {
			return set, nil
		}
		id = next
	}
	return set, nil
}

// add parses one raw record and keeps it if it names a sensor.
func (set *sdrSet) add(rec []byte) {
	if len(rec) < 8 {
		return
	}
	switch types.SDRRecordType(rec[3]) {
	case types.SDRRecordTypeFullSensor, types.SDRRecordTypeCompactSensor, types.SDRRecordTypeEventOnly:
	default:
		return
	}
	sdr, ok := parseSDR(rec)
	if !ok {
		return
	}
	set.sensors = append(set.sensors, sdr)
	k := sensorKey{owner: rec[5], lun: rec[6] & 0x03, num: rec[7]}
	if _, dup := set.byKey[k]; !dup {
		set.byKey[k] = sdr
	}
}

// parseSDR runs go-ipmi's SDR decoder, which is outside code fed with bytes
// from the network: a panic in it means "not a record we can use".
func parseSDR(rec []byte) (sdr *types.SDR, ok bool) {
	defer func() {
		if recover() != nil {
			sdr, ok = nil, false
		}
	}()
	sdr, err := types.ParseSDR(rec, 0)
	if err != nil || sdr == nil {
		return nil, false
	}
	switch {
	case sdr.Full != nil, sdr.Compact != nil, sdr.EventOnly != nil:
		return sdr, true
	}
	return nil, false
}

// sdrReader reads records with Get SDR, whole when the BMC allows and in
// 16-byte pieces when it does not (go-ipmi's BMC answers CAh beyond 16).
type sdrReader struct {
	s       *rmcp.Session
	resv    uint16
	partial bool // the BMC refused whole-record reads
}

func (r *sdrReader) reserve(ctx context.Context) error {
	d, err := r.s.Raw(ctx, types.NetFnStorageRequest, types.CommandReserveSDRRepo.ID, nil)
	switch {
	case err == nil && len(d) >= 2:
		r.resv = binary.LittleEndian.Uint16(d)
	case err == nil, rmcp.IsCompletion(err, 0xc1):
		r.resv = 0 // no reservations: only whole reads are safe, which is fine
	default:
		return fmt.Errorf("reserve sdr repository: %w", err)
	}
	return nil
}

// get is one Get SDR: next record ID and the bytes read.
func (r *sdrReader) get(ctx context.Context, id uint16, off, n uint8) (uint16, []byte, error) {
	req := []byte{byte(r.resv), byte(r.resv >> 8), byte(id), byte(id >> 8), off, n}
	d, err := r.s.Raw(ctx, types.NetFnStorageRequest, types.CommandGetSDR.ID, req)
	if err != nil {
		return 0, nil, err
	}
	if len(d) < 2 {
		return 0, nil, fmt.Errorf("%w: get sdr: %d-byte answer", bmc.ErrProtocol, len(d))
	}
	return binary.LittleEndian.Uint16(d), d[2:], nil
}

// record reads one whole record, re-reserving (bounded) when the BMC
// cancels the reservation between partial reads.
func (r *sdrReader) record(ctx context.Context, id uint16) (uint16, []byte, error) {
	for try := 0; ; try++ {
		next, rec, err := r.read(ctx, id)
		if err == nil || !rmcp.IsCompletion(err, 0xc5) || try >= maxResvRetries {
			return next, rec, err
		}
		if err := r.reserve(ctx); err != nil {
			return 0, nil, err
		}
	}
}

func (r *sdrReader) read(ctx context.Context, id uint16) (uint16, []byte, error) {
	if !r.partial {
		next, rec, err := r.get(ctx, id, 0, 0xff)
		switch {
		case err == nil && len(rec) >= sdrHeaderLen && len(rec) >= sdrHeaderLen+int(rec[4]):
			return next, rec[:sdrHeaderLen+int(rec[4])], nil
		case err == nil, rmcp.IsCompletion(err, 0xca), rmcp.IsCompletion(err, 0xff):
			r.partial = true // short answer or "cannot return that many bytes"
		default:
			return 0, nil, err
		}
	}
	next, hdr, err := r.get(ctx, id, 0, sdrHeaderLen)
	if err != nil {
		return 0, nil, err
	}
	if len(hdr) < sdrHeaderLen {
		return 0, nil, fmt.Errorf("%w: get sdr: %d-byte header", bmc.ErrProtocol, len(hdr))
	}
	total := sdrHeaderLen + int(hdr[4])
	rec := append(make([]byte, 0, total), hdr[:sdrHeaderLen]...)
	for len(rec) < total {
		n := min(sdrChunk, total-len(rec))
		_, part, err := r.get(ctx, id, uint8(len(rec)), uint8(n))
		if err != nil {
			return 0, nil, err
		}
		if len(part) == 0 {
			return 0, nil, fmt.Errorf("%w: get sdr: empty piece at offset %d", bmc.ErrProtocol, len(rec))
		}
		rec = append(rec, part[:min(len(part), n)]...)
	}
	return next, rec, nil
}
