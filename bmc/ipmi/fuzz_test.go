package ipmi

import (
	"errors"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/bougou/go-ipmi/pkg/types"

	"github.com/rmm-project/rmm/bmc/ipmi/internal/testbmc"
)

// FuzzParseSEL decodes arbitrary SEL records (a BMC's log is input from
// the network) singly and as a log, with an SDR set to name sensors.
func FuzzParseSEL(f *testing.F) {
	for _, r := range testbmc.PanicRecords(0x6a000000, "Fatal exception in interrupt") {
		f.Add(r[:], r[:])
	}
	f.Add(make([]byte, 16), []byte{0, 0, 0xc1, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13})
	f.Add([]byte{0, 0, 0x02, 0xff, 0xff, 0xff, 0xff, 0x20, 0, 4, 0x01, 0x30, 0x81, 0x59, 95, 90}, []byte{})
	sdrs := &sdrSet{byKey: map[sensorKey]*types.SDR{}}
	sdrs.add(testbmc.EventOnly(testbmc.OwnerKernel, 1, 0x20, 0x6f, "OS Stop"))
	f.Fuzz(func(t *testing.T, a, b []byte) {
		var ra, rb [16]byte
		copy(ra[:], a)
		copy(rb[:], b)
		for _, e := range decodeSEL([][16]byte{ra, rb, ra}, sdrs) {
			if e.ID == "" || len(e.Raw) != 32 || e.Severity == "" {
				t.Fatalf("incomplete entry %+v", e)
			}
		}
	})
}

// FuzzParseSDR feeds arbitrary records to the SDR set (go-ipmi's parser
// runs behind a recover) and looks names up.
func FuzzParseSDR(f *testing.F) {
	f.Add(testbmc.EventOnly(testbmc.OwnerKernel, 1, 0x20, 0x6f, "OS Stop"))
	f.Add(testbmc.FullSensor(testbmc.OwnerBMC, 0x10, 0x01, "CPU Temp", testbmc.Threshold{M: 1, Unit: 1}))
	f.Add(testbmc.CompactSensor(testbmc.OwnerBMC, 0x14, 0x08, 0x6f, "PSU1 Status"))
	f.Add([]byte{0, 0, 0x51, 0x01, 0xff})
	f.Fuzz(func(t *testing.T, rec []byte) {
		set := &sdrSet{byKey: map[sensorKey]*types.SDR{}}
		set.add(rec)
		for k := range set.byKey {
			_ = set.name(k)
		}
	})
}

// FuzzParseFRU parses arbitrary FRU inventories (BMC content is input from
// the network): no panic, no read outside the inventory, no control
// characters in what ends up in messages.
func FuzzParseFRU(f *testing.F) {
	f.Add(image(boardArea(ascii8("Board Co"), ascii8("X12"), ascii8("BRD-1")), productArea(ascii8("Dell Inc."), ascii8("R750"), ascii8("PN"), ascii8("A01"), ascii8("7XJ2K53"))))
	f.Add(image(nil, productArea(ascii6("ACME"), bcd("12"), binField(1, 2))))
	f.Add(crasher)
	f.Add([]byte{1, 0, 0, 1, 1, 0, 0, 0xfd, 1, 0xff, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		id, err := parseFRUIdentity(memFRU(b))
		if err != nil && !errors.Is(err, errBadFRU) {
			t.Fatalf("error %v is not errBadFRU", err)
		}
		for _, s := range []string{id.ProductManufacturer, id.ProductName, id.ProductSerial, id.BoardManufacturer, id.BoardProduct, id.BoardSerial} {
			if strings.ContainsFunc(s, unicode.IsControl) || s != strings.TrimSpace(s) {
				t.Fatalf("field %q has control characters or untrimmed space", s)
			}
		}
	})
}

func FuzzFormatGUID(f *testing.F) {
	f.Add(testbmc.DefaultGUID[:], int64(0))
	f.Add(make([]byte, 16), int64(1e9))
	f.Fuzz(func(t *testing.T, b []byte, now int64) {
		var g [16]byte
		copy(g[:], b)
		if s := FormatGUID(g, time.Unix(now%(1<<40), 0)); len(s) != 32 && len(s) != 36 {
			t.Fatalf("FormatGUID = %q", s)
		}
	})
}
