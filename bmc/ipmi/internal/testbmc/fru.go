package testbmc

import (
	"context"
	"sync"

	"github.com/bougou/go-ipmi/pkg/handlers"
	"github.com/bougou/go-ipmi/pkg/types"
)

// FRU is the FRU inventory of device 0, served by the test BMC's own Get
// FRU Inventory Area Info and Read FRU Data handlers, with the limits real
// BMCs have: a largest read count, short answers, word addressing, or no
// FRU at all. The zero value has no inventory (CBh, as go-ipmi answers).
type FRU struct {
	mu      sync.Mutex
	data    []byte
	missing types.CompletionCode
	maxRead int
	tooBig  types.CompletionCode
	short   int
	words   bool
	counts  []int
}

// Set replaces the inventory image (nil: none).
func (f *FRU) Set(data []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.data = append([]byte(nil), data...)
	if data == nil {
		f.data = nil
	}
}

// SetMissing makes both commands answer cc (C1h: a BMC without FRU
// commands; CBh: no such device); 0 serves the image again.
func (f *FRU) SetMissing(cc types.CompletionCode) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.missing = cc
}

// SetLimits sets the largest count Read FRU Data accepts (0: any) and the
// completion code a larger one gets (C7h, C8h or CAh), and short, the most
// bytes an answer carries without complaint (0: all asked), as BMCs that
// return fewer bytes than asked do.
func (f *FRU) SetLimits(maxRead int, tooBig types.CompletionCode, short int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.maxRead, f.tooBig, f.short = maxRead, tooBig, short
}

// SetWords makes the device word-addressed: offsets and counts in 16-bit
// words, as Get FRU Inventory Area Info then announces.
func (f *FRU) SetWords(on bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.words = on
}

// Counts returns the count byte of every Read FRU Data received, in order.
func (f *FRU) Counts() []int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]int(nil), f.counts...)
}

func (f *FRU) info(_ context.Context, _ *handlers.HandlerContext, req []byte) ([]byte, types.CompletionCode, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case f.missing != 0:
		return nil, f.missing, nil
	case len(req) < 1:
		return nil, types.CodeRequestDataLengthInvalid, nil
	case req[0] != 0 || f.data == nil:
		return nil, types.CodeRequestedDataNotPresent, nil
	}
	n := len(f.data)
	access := byte(0)
	if f.words {
		access = 1
	}
	return []byte{byte(n), byte(n >> 8), access}, types.CodeOK, nil
}

func (f *FRU) read(_ context.Context, _ *handlers.HandlerContext, req []byte) ([]byte, types.CompletionCode, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case f.missing != 0:
		return nil, f.missing, nil
	case len(req) < 4:
		return nil, types.CodeRequestDataLengthInvalid, nil
	case req[0] != 0 || f.data == nil:
		return nil, types.CodeRequestedDataNotPresent, nil
	}
	off, count := int(req[1])|int(req[2])<<8, int(req[3])
	f.counts = append(f.counts, count)
	unit := 1
	if f.words {
		unit = 2
	}
	off, count = off*unit, count*unit
	if f.maxRead > 0 && count > f.maxRead {
		return nil, f.tooBig, nil
	}
	if off >= len(f.data) {
		return nil, types.CompletionCode(0xc9), nil // parameter out of range
	}
	if f.short > 0 && count > f.short {
		count = f.short
	}
	count = min(count, len(f.data)-off)
	return append([]byte{byte(count / unit)}, f.data[off:off+count]...), types.CodeOK, nil
}
