package ipmi

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/bougou/go-ipmi/pkg/types"

	"github.com/rmm-project/rmm/bmc/ipmi/internal/testbmc"
)

// FRU image builders. Fields are type/length encoded by the helpers below;
// areas are padded to 8 bytes with a zero checksum, as the FRU
// specification lays them out.

func ascii8(s string) []byte { return append([]byte{0xc0 | byte(len(s))}, s...) }

// ascii6 packs s (characters 0x20-0x5f) four to three bytes, little-endian.
func ascii6(s string) []byte {
	var out []byte
	for i := 0; i < len(s); i += 4 {
		var v uint32
		for j := 0; j < 4; j++ {
			c := byte(' ')
			if i+j < len(s) {
				c = s[i+j]
			}
			v |= uint32(c-0x20) << (6 * j)
		}
		out = append(out, byte(v), byte(v>>8), byte(v>>16))
	}
	return append([]byte{0x80 | byte(len(out))}, out...)
}

// bcd packs digits high nibble first, as ipmitool reads them.
func bcd(s string) []byte {
	const alpha = "0123456789 -.:,_"
	if len(s)%2 == 1 {
		s += " "
	}
	var out []byte
	for i := 0; i < len(s); i += 2 {
		out = append(out, byte(strings.IndexByte(alpha, s[i]))<<4|byte(strings.IndexByte(alpha, s[i+1])))
	}
	return append([]byte{0x40 | byte(len(out))}, out...)
}

func binField(b ...byte) []byte { return append([]byte{byte(len(b))}, b...) }

// area builds an info area: head (format version, a length placeholder,
// language, and for a board the manufacturing date), the fields, C1h,
// padding and the checksum.
func area(head []byte, fields ...[]byte) []byte {
	b := slices.Clone(head)
	for _, f := range fields {
		b = append(b, f...)
	}
	b = append(b, 0xc1)
	for (len(b)+1)%8 != 0 {
		b = append(b, 0)
	}
	b[1] = byte((len(b) + 1) / 8)
	return append(b, -checksum(b))
}

func productArea(fields ...[]byte) []byte { return area([]byte{1, 0, 0}, fields...) }
func boardArea(fields ...[]byte) []byte   { return area([]byte{1, 0, 0, 0, 0, 0}, fields...) }

// image lays out a common header, then the board and product areas (either
// may be nil).
func image(board, product []byte) []byte {
	h := []byte{1, 0, 0, 0, 0, 0, 0, 0}
	b := slices.Clone(h)
	if board != nil {
		h[3] = byte(len(b) / 8)
		b = append(b, board...)
	}
	if product != nil {
		h[4] = byte(len(b) / 8)
		b = append(b, product...)
	}
	h[7] = -checksum(h[:7])
	copy(b, h)
	return b
}

// memFRU is an in-memory fruReader.
type memFRU []byte

func (m memFRU) size() int { return len(m) }
func (m memFRU) read(off, n int) ([]byte, error) {
	if off < 0 || n < 0 || off+n > len(m) {
		return nil, fmt.Errorf("%w: read %d at %d of %d", errBadFRU, n, off, len(m))
	}
	return slices.Clone(m[off : off+n]), nil
}

func TestFieldString(t *testing.T) {
	for _, tc := range []struct {
		name  string
		field []byte
		want  string
	}{
		{"8-bit ascii", ascii8("SN-12345"), "SN-12345"},
		{"8-bit ascii trimmed", ascii8("  R750   "), "R750"},
		{"latin-1", ascii8("Fran\xe7ais"), "Français"},
		{"control characters dropped", ascii8("SN\x1b[2J01\x00\x00"), "SN[2J01"},
		{"6-bit ascii", ascii6("IPMI"), "IPMI"},
		{"6-bit ascii padded", ascii6("SN-42"), "SN-42"},
		{"bcd plus", bcd("2024-11.30"), "2024-11.30"},
		{"binary as hex", binField(0xde, 0xad, 0x01), "dead01"},
		{"empty", []byte{0xc0}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := decodeFields(append(tc.field, 0xc1), 0, 1)
			if err != nil || len(f) != 1 || f[0] != tc.want {
				t.Errorf("decoded %q, %v; want [%q]", f, err, tc.want)
			}
		})
	}
}

// crasher is the input go-ipmi v0.9.1's types.ParseFRU panics on (slice
// bounds out of range: a board area whose last field ends just before the
// checksum byte), found by fuzzing it.
var crasher = []byte("\x01\x00\x00\x01\x00\x160\xe8" + strings.Repeat("0", 100))

func TestParseFRUIdentity(t *testing.T) {
	goipmi, err := types.PackFRU(types.FRUPackConfig{
		Chassis: &types.FRUPackChassis{Type: 0x17, Serial: "CH-1"},
		Board:   &types.FRUPackBoard{Mfg: "Board Co", Product: "X12", Serial: "BRD-1"},
		Product: &types.FRUPackProduct{Manufacturer: "Dell Inc.", Name: "PowerEdge R750", Version: "1", Serial: "7XJ2K53"},
	})
	if err != nil {
		t.Fatal(err)
	}
	board := boardArea(ascii8("Board Co"), ascii8("X12"), ascii8("BRD-1"), ascii8("PN"), []byte{0xc0})
	product := productArea(ascii8("Dell Inc."), ascii8("PowerEdge R750"), ascii8("PN-1"), ascii8("A01"), ascii8("7XJ2K53"), []byte{0xc0}, []byte{0xc0})
	badSum := image(nil, product)
	badSum[7]++
	version2 := image(nil, product)
	version2[0], version2[7] = 2, version2[7]-1
	truncated := image(nil, product)
	truncated = truncated[:len(truncated)-8]
	beyond := image(nil, product)
	beyond[4], beyond[7] = 40, beyond[7]-39
	longField := image(nil, productArea(ascii8("Mf"), ascii8("Nm"), ascii8("Pn"), ascii8("Vs"), ascii8("Sn")))
	longField[8+3+3*4] = 0xc0 | 40 // the serial claims 40 bytes
	for _, tc := range []struct {
		name    string
		img     []byte
		want    fruIdentity
		wantErr error
	}{
		{"go-ipmi's PackFRU", goipmi, fruIdentity{ProductManufacturer: "Dell Inc.", ProductName: "PowerEdge R750", ProductSerial: "7XJ2K53"}, nil},
		{"product and board", image(board, product), fruIdentity{ProductManufacturer: "Dell Inc.", ProductName: "PowerEdge R750", ProductSerial: "7XJ2K53"}, nil},
		{"board serial when the product has none", image(board, productArea(ascii8("Dell Inc."), ascii8("R750"))),
			fruIdentity{ProductManufacturer: "Dell Inc.", ProductName: "R750", BoardManufacturer: "Board Co", BoardProduct: "X12", BoardSerial: "BRD-1"}, nil},
		{"board only", image(board, nil), fruIdentity{BoardManufacturer: "Board Co", BoardProduct: "X12", BoardSerial: "BRD-1"}, nil},
		{"6-bit and bcd fields", image(nil, productArea(ascii6("ACME"), ascii8("Box"), []byte{0xc0}, []byte{0xc0}, bcd("0042-17"))),
			fruIdentity{ProductManufacturer: "ACME", ProductName: "Box", ProductSerial: "0042-17"}, nil},
		{"no areas", image(nil, nil), fruIdentity{}, nil},
		{"end marker after the manufacturer", image(nil, productArea(ascii8("Dell"))), fruIdentity{ProductManufacturer: "Dell"}, nil},
		{"header checksum", badSum, fruIdentity{}, errBadFRU},
		{"header version", version2, fruIdentity{}, errBadFRU},
		{"area cut short", truncated, fruIdentity{}, errBadFRU},
		{"area beyond the inventory", beyond, fruIdentity{}, errBadFRU},
		{"field past its area keeps the fields before it", longField, fruIdentity{ProductManufacturer: "Mf", ProductName: "Nm"}, errBadFRU},
		{"shorter than a header", []byte{1, 0, 0}, fruIdentity{}, errBadFRU},
		{"go-ipmi crasher", crasher, fruIdentity{}, errBadFRU},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseFRUIdentity(memFRU(tc.img))
			if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil) != (err == nil) {
				t.Errorf("error %v, want %v", err, tc.wantErr)
			}
			if got != tc.want {
				t.Errorf("got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

// TestIdentityFRU reads the FRU over the wire from BMCs with the read
// limits real ones have.
func TestIdentityFRU(t *testing.T) {
	long := strings.Repeat("L", 60) // a product area of more than two chunks
	img := image(boardArea(ascii8("Board Co"), ascii8("X12"), ascii8("BRD-1")),
		productArea(ascii8("Quanta"), ascii8(long), ascii8(""), ascii8(""), ascii8("QTF-0001")))
	for _, tc := range []struct {
		name        string
		setup       func(f *testbmc.FRU)
		wantSerial  string
		wantModel   string
		wantVendor  string
		wantCounts  func(c []int) bool
		countsIdeal string
	}{
		{"32-byte reads", func(f *testbmc.FRU) { f.Set(img) }, "QTF-0001", long, "Quanta",
			func(c []int) bool {
				return len(c) > 2 && !slices.ContainsFunc(c, func(n int) bool { return n > fruChunk })
			}, "no read above 32"},
		{"shrinks on CAh", func(f *testbmc.FRU) { f.Set(img); f.SetLimits(16, 0xca, 0) }, "QTF-0001", long, "Quanta",
			func(c []int) bool { return c[0] == 8 && slices.Contains(c, 32) && slices.Contains(c, 16) }, "32, then 16"},
		{"shrinks on C7h down to 8", func(f *testbmc.FRU) { f.Set(img); f.SetLimits(8, 0xc7, 0) }, "QTF-0001", long, "Quanta",
			func(c []int) bool { return slices.Max(c[len(c)-3:]) == 8 }, "8 at the end"},
		{"short answers", func(f *testbmc.FRU) { f.Set(img); f.SetLimits(0, 0, 5) }, "QTF-0001", long, "Quanta", nil, ""},
		{"word addressed", func(f *testbmc.FRU) { f.Set(img); f.SetWords(true) }, "QTF-0001", long, "Quanta",
			func(c []int) bool { return !slices.ContainsFunc(c, func(n int) bool { return n > fruChunk/2 }) }, "counts in words"},
		{"no FRU: CBh", func(f *testbmc.FRU) {}, "", "", "Intel", nil, ""},
		{"no FRU commands: C1h", func(f *testbmc.FRU) { f.Set(img); f.SetMissing(0xc1) }, "", "", "Intel", nil, ""},
		{"limit below 8: no serial, no error", func(f *testbmc.FRU) { f.Set(img); f.SetLimits(4, 0xca, 0) }, "", "", "Intel", nil, ""},
		{"malformed: no serial, no error", func(f *testbmc.FRU) { f.Set(crasher) }, "", "", "Intel", nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := startBMC(t, testbmc.Options{})
			tc.setup(b.FRU)
			p := open(t, b, 17)
			id, err := p.Identity(ctx(t))
			if err != nil {
				t.Fatal(err)
			}
			if id.Serial != tc.wantSerial || id.Model != tc.wantModel || id.Vendor != tc.wantVendor {
				t.Errorf("serial %q model %q vendor %q; want %q %q %q", id.Serial, id.Model, id.Vendor, tc.wantSerial, tc.wantModel, tc.wantVendor)
			}
			if id.GUID == "" || id.Firmware != "1.02" {
				t.Errorf("GUID %q firmware %q: the FRU outcome must not cost the other fields", id.GUID, id.Firmware)
			}
			if c := b.FRU.Counts(); tc.wantCounts != nil && !tc.wantCounts(c) {
				t.Errorf("read counts %v, want %s", c, tc.countsIdeal)
			}
			if c := b.FRU.Counts(); len(c) > fruMaxReads {
				t.Errorf("%d reads, more than the bound %d", len(c), fruMaxReads)
			}
		})
	}
}

// TestFRUMatchesIpmitool serves FRU images from the test BMC and compares
// what Identity reads with ipmitool's "fru print 0".
func TestFRUMatchesIpmitool(t *testing.T) {
	bin, err := exec.LookPath("ipmitool")
	if err != nil {
		t.Skip("ipmitool not installed")
	}
	for _, tc := range []struct {
		name string
		img  []byte
	}{
		{"8-bit", image(boardArea(ascii8("Board Co"), ascii8("X12"), ascii8("BRD-1"), ascii8("PN"), []byte{0xc0}),
			productArea(ascii8("Dell Inc."), ascii8("PowerEdge R750"), ascii8("PN-1"), ascii8("A01"), ascii8("7XJ2K53"), []byte{0xc0}, []byte{0xc0}))},
		{"6-bit and bcd", image(boardArea(ascii8("Bo"), ascii8("Pr"), bcd("2024-0001"), ascii8("PN"), []byte{0xc0}),
			productArea(ascii6("ACME CORP"), ascii6("BOX 9"), []byte{0xc0}, []byte{0xc0}, ascii6("SN42-XYZ"), []byte{0xc0}, []byte{0xc0}))},
		{"bcd serial", image(nil, productArea(ascii8("Mf"), ascii8("Nm"), ascii8("Pn"), ascii8("Vs"), bcd("12-34.56"), []byte{0xc0}, []byte{0xc0}))},
		{"board serial only", image(boardArea(ascii8("Board Co"), ascii8("X12"), ascii8("BRD-77"), ascii8("PN"), []byte{0xc0}), nil)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := startBMC(t, testbmc.Options{})
			b.FRU.Set(tc.img)
			cmd := exec.Command(bin, "-I", "lanplus", "-C", "3", "-H", b.Addr.Addr().String(),
				"-p", fmt.Sprint(b.Addr.Port()), "-U", testbmc.User, "-E", "fru", "print", "0")
			cmd.Env = append(os.Environ(), "IPMI_PASSWORD="+testbmc.Password)
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("ipmitool: %v\n%s", err, out)
			}
			lines := map[string]string{}
			for _, l := range strings.Split(string(out), "\n") {
				if k, v, ok := strings.Cut(l, ":"); ok {
					lines[strings.TrimSpace(k)] = strings.TrimSpace(v)
				}
			}
			serial := lines["Product Serial"]
			if serial == "" {
				serial = lines["Board Serial"]
			}
			vendor := lines["Product Manufacturer"]
			if vendor == "" {
				vendor = lines["Board Mfg"]
			}
			p := open(t, b, 17)
			id, err := p.Identity(ctx(t))
			if err != nil {
				t.Fatal(err)
			}
			if id.Serial != serial || id.Model != lines["Product Name"] || id.Vendor != vendor || serial == "" {
				t.Errorf("rmm: serial %q model %q vendor %q\nipmitool: serial %q model %q vendor %q\n%s",
					id.Serial, id.Model, id.Vendor, serial, lines["Product Name"], vendor, out)
			}
		})
	}
}
