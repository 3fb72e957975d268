package ipmi

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"unicode"

	"github.com/rmm-project/rmm/bmc/ipmi/rmcp"
)

// The FRU inventory (Platform Management FRU Information Storage Definition
// v1.0) is where an IPMI BMC keeps the machine's serial number, product
// name and manufacturer: the same facts Redfish puts on the ComputerSystem
// and dmidecode reads from SMBIOS.
//
// rmm parses it itself instead of with go-ipmi's types.ParseFRU, which
// v0.9.1 gets wrong in three ways that matter here: it panics (slice bounds
// out of range) on an area whose last field ends just before the checksum
// byte, it decodes BCD-plus fields with the nibbles swapped relative to
// ipmitool, and one malformed area (a multi-record, say) fails the whole
// parse, losing a perfectly good product serial. Only the common header,
// the Product Info area and the Board Info area are read, nothing else.

// Read FRU Data limits. Reads start at fruChunk bytes, which every LAN BMC
// rmm has met accepts (IPMB-attached FRUs may not: see shrink), and shrink
// on the completion codes that mean "ask for less". The number of reads per
// Identity is bounded, so a BMC that answers one byte at a time cannot keep
// rmm busy.
const (
	fruChunk    = 32
	fruMinChunk = 8
	fruMaxReads = 64
	// fruMaxArea is the largest an info area can be (length byte 255, in
	// multiples of 8).
	fruMaxArea = 255 * 8
)

// Completion codes of Read FRU Data that ask for a smaller count (IPMI
// v2.0 table 5-2; ipmitool's fru_cc_rq2big): C7h request data length
// invalid, C8h request data field length limit exceeded, CAh cannot return
// the number of requested data bytes.
func fruTooBig(err error) bool {
	return rmcp.IsCompletion(err, 0xc7) || rmcp.IsCompletion(err, 0xc8) || rmcp.IsCompletion(err, 0xca)
}

// errNoFRU says the BMC has no FRU inventory for device 0 (or none it will
// show): not an error for Identity, just no serial.
var errNoFRU = errors.New("no fru inventory")

// errBadFRU is FRU content rmm cannot make sense of: a bad header checksum,
// an unknown format, an area that does not fit. Like errNoFRU it costs the
// identity its serial, not its other fields.
var errBadFRU = errors.New("malformed fru inventory")

// fruIdentity is what rmm takes from a FRU inventory.
type fruIdentity struct {
	ProductManufacturer, ProductName, ProductSerial string
	BoardManufacturer, BoardProduct, BoardSerial    string
}

// Serial is the product serial, else the board serial (ipmitool's
// "Product Serial", "Board Serial").
func (f fruIdentity) Serial() string {
	if f.ProductSerial != "" {
		return f.ProductSerial
	}
	return f.BoardSerial
}

// Manufacturer is the product's, else the board's.
func (f fruIdentity) Manufacturer() string {
	if f.ProductManufacturer != "" {
		return f.ProductManufacturer
	}
	return f.BoardManufacturer
}

// fruReader reads n bytes at offset off of the FRU inventory, which is
// size bytes long. It may return fewer bytes than asked only with an
// error.
type fruReader interface {
	size() int
	read(off, n int) ([]byte, error)
}

// parseFRUIdentity reads the common header and the Product and Board Info
// areas through r. It never reads outside [0, r.size()) and never panics.
// It returns what it could decode even with an error (a broken Product area
// does not hide the Board serial); content it cannot parse is errBadFRU.
func parseFRUIdentity(r fruReader) (fruIdentity, error) {
	var id fruIdentity
	if r.size() < 8 {
		return id, fmt.Errorf("%w: the inventory area is %d bytes, less than a common header", errBadFRU, r.size())
	}
	h, err := r.read(0, 8)
	if err != nil {
		return id, err
	}
	if h[0]&0x0f != 1 {
		return id, fmt.Errorf("%w: common header format version %#02x, want 1", errBadFRU, h[0])
	}
	if checksum(h) != 0 {
		return id, fmt.Errorf("%w: common header checksum does not add up", errBadFRU)
	}
	var errs []error
	if off := int(h[4]) * 8; off != 0 {
		// Manufacturer, Product Name, Part/Model, Version, Serial, ...
		f, err := readInfoArea(r, off, 3, 5)
		id.ProductManufacturer, id.ProductName, id.ProductSerial = field(f, 0), field(f, 1), field(f, 4)
		if err != nil {
			errs = append(errs, fmt.Errorf("product info area: %w", err))
		}
	}
	if off := int(h[3]) * 8; off != 0 && (id.ProductSerial == "" || id.ProductManufacturer == "") {
		// Manufacturer, Product Name, Serial, Part Number, FRU File ID.
		f, err := readInfoArea(r, off, 6, 3)
		id.BoardManufacturer, id.BoardProduct, id.BoardSerial = field(f, 0), field(f, 1), field(f, 2)
		if err != nil {
			errs = append(errs, fmt.Errorf("board info area: %w", err))
		}
	}
	return id, errors.Join(errs...)
}

// field returns f[i], or "" when the area ended before field i.
func field(f []string, i int) string {
	if i < len(f) {
		return f[i]
	}
	return ""
}

// readInfoArea reads a Board or Product Info area at off and decodes its
// first fields type/length fields, which start at byte first (6 for Board,
// after the manufacturing date; 3 for Product). It returns the fields
// decoded before any error, so a truncated area still yields its leading
// fields.
func readInfoArea(r fruReader, off, first, fields int) ([]string, error) {
	if off+8 > r.size() {
		return nil, fmt.Errorf("%w: area at %d lies beyond the %d-byte inventory", errBadFRU, off, r.size())
	}
	// The first chunk usually holds the whole area; read what fits.
	head, err := r.read(off, min(fruChunk, r.size()-off))
	if err != nil {
		return nil, err
	}
	if head[0]&0x0f != 1 {
		return nil, fmt.Errorf("%w: area at %d has format version %#02x, want 1", errBadFRU, off, head[0])
	}
	n := int(head[1]) * 8
	if n < 8 || off+n > r.size() {
		return nil, fmt.Errorf("%w: area at %d claims %d bytes; the inventory has %d", errBadFRU, off, n, r.size()-off)
	}
	area := head
	if len(area) > n {
		area = area[:n]
	} else if len(area) < n {
		rest, err := r.read(off+len(area), n-len(area))
		if err != nil {
			return nil, err
		}
		area = append(area[:len(area):len(area)], rest...)
	}
	// The area checksum is not enforced: BMCs in the field ship areas
	// whose checksum is off, and ipmitool prints them anyway. A wrong
	// serial can only make an identity check fail, never pass.
	return decodeFields(area[:n-1], first, fields)
}

// decodeFields decodes the first n type/length fields from area[at:]
// (the checksum byte is not passed in). Like ipmitool it reads these
// mandatory fields by position and does not take C1h for the end marker
// there: C1h is also an 8-bit field of one character, which the
// specification reserves but packers (go-ipmi's among them) write for a
// one-character version. It returns the fields decoded before an error.
func decodeFields(area []byte, at, n int) ([]string, error) {
	var out []string
	for len(out) < n && at < len(area) {
		tl := area[at]
		size := int(tl & 0x3f)
		if at+1+size > len(area) {
			return out, fmt.Errorf("%w: field %d runs past the end of its area", errBadFRU, len(out)+1)
		}
		out = append(out, fieldString(tl>>6, area[at+1:at+1+size]))
		at += 1 + size
	}
	return out, nil
}

// bcdPlus is the BCD-plus alphabet of FRU fields.
const bcdPlus = "0123456789 -.:,_"

// fieldString decodes one field's data the way ipmitool prints it: binary
// as hex, BCD plus high nibble first, 6-bit ASCII in packed little-endian
// groups of three bytes, and 8-bit data as Latin-1. The result is trimmed
// and stripped of control characters (it ends up in error messages and on
// terminals, and a BMC is not to be trusted with escape sequences).
func fieldString(typ byte, d []byte) string {
	var b strings.Builder
	switch typ {
	case 0: // binary
		b.WriteString(hex.EncodeToString(d))
	case 1: // BCD plus
		for _, c := range d {
			b.WriteByte(bcdPlus[c>>4])
			b.WriteByte(bcdPlus[c&0x0f])
		}
	case 2: // 6-bit ASCII, four characters in every three bytes
		for i := 0; i < len(d); i += 3 {
			var v uint32
			for j := 0; j < 3 && i+j < len(d); j++ {
				v |= uint32(d[i+j]) << (8 * j)
			}
			for range 4 {
				b.WriteByte(byte(v&0x3f) + 0x20)
				v >>= 6
			}
		}
	default: // 8-bit ASCII + Latin-1
		for _, c := range d {
			b.WriteRune(rune(c))
		}
	}
	return strings.TrimSpace(strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return -1
		}
		return r
	}, b.String()))
}

// checksum is the FRU zero checksum: the sum of the bytes, which must be 0.
func checksum(b []byte) byte {
	var s byte
	for _, c := range b {
		s += c
	}
	return s
}

// fruDevice reads FRU device 0 of a BMC with Read FRU Data.
type fruDevice struct {
	ctx   context.Context
	s     *rmcp.Session
	n     int
	words bool // the device is addressed in 16-bit words
	chunk int  // bytes per read; shrinks when the BMC asks for less
	reads int
}

// openFRU asks Get FRU Inventory Area Info about device 0. It returns
// errNoFRU when the BMC has none: completion code C1h (the command is not
// implemented) or CBh (no such device), or a zero-sized area.
func openFRU(ctx context.Context, s *rmcp.Session) (*fruDevice, error) {
	data, err := s.Raw(ctx, 0x0a, 0x10, []byte{0})
	switch {
	case rmcp.IsCompletion(err, 0xc1), rmcp.IsCompletion(err, 0xcb):
		return nil, errNoFRU
	case err != nil:
		return nil, err
	case len(data) < 3:
		return nil, fmt.Errorf("%w: get fru inventory area info: %d bytes of answer, want 3", errBadFRU, len(data))
	}
	d := &fruDevice{ctx: ctx, s: s, n: int(data[0]) | int(data[1])<<8, words: data[2]&1 != 0, chunk: fruChunk}
	if d.n == 0 {
		return nil, errNoFRU
	}
	return d, nil
}

func (d *fruDevice) size() int { return d.n }

// read reads [off, off+n) in chunks, shrinking the chunk when the BMC
// answers C7h, C8h or CAh, and accepting short answers (continuing after
// them). Word-addressed devices get even offsets and counts.
func (d *fruDevice) read(off, n int) ([]byte, error) {
	if off < 0 || n < 0 || off+n > d.n {
		return nil, fmt.Errorf("%w: read of %d bytes at %d outside the %d-byte inventory", errBadFRU, n, off, d.n)
	}
	out := make([]byte, 0, n)
	for len(out) < n {
		if d.reads >= fruMaxReads {
			return nil, fmt.Errorf("%w: read fru data: more than %d reads for one identity", errBadFRU, fruMaxReads)
		}
		d.reads++
		at := off + len(out)
		want := min(d.chunk, n-len(out))
		start, count := at, want
		if d.words {
			start = at &^ 1
			count = (at + want + 1) &^ 1
			count -= start
		}
		addr := start
		reqCount := count
		if d.words {
			addr, reqCount = start/2, count/2
		}
		data, err := d.s.Raw(d.ctx, 0x0a, 0x11, []byte{0, byte(addr), byte(addr >> 8), byte(reqCount)})
		if err != nil {
			if fruTooBig(err) && d.chunk > fruMinChunk {
				d.chunk = max(fruMinChunk, d.chunk/2)
				continue
			}
			return nil, fmt.Errorf("read fru data at %d: %w", at, err)
		}
		if len(data) < 1 {
			return nil, fmt.Errorf("%w: read fru data at %d: empty answer", errBadFRU, at)
		}
		got := int(data[0])
		if d.words {
			got *= 2
		}
		if got > len(data)-1 {
			return nil, fmt.Errorf("%w: read fru data at %d: count says %d bytes, the answer has %d", errBadFRU, at, got, len(data)-1)
		}
		if got == 0 {
			return nil, fmt.Errorf("%w: read fru data at %d: the BMC returned no data", errBadFRU, at)
		}
		chunk := data[1 : 1+got]
		chunk = chunk[at-start:] // a word device may start a byte early
		chunk = chunk[:min(len(chunk), n-len(out))]
		out = append(out, chunk...)
	}
	return out, nil
}

// readFRU reads the identity fields of FRU device 0. Absent or malformed
// inventories yield errNoFRU or errBadFRU; anything else (a timeout, a
// closed session) is a real error.
func readFRU(ctx context.Context, s *rmcp.Session) (fruIdentity, error) {
	d, err := openFRU(ctx, s)
	if err != nil {
		return fruIdentity{}, err
	}
	return parseFRUIdentity(d)
}
