package rmcp

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/bougou/go-ipmi/pkg/types"
)

// Wire constants (IPMI v2.0 §13.1.3, §13.6, ASF 2.0 §3.2.2).
const (
	rmcpVersion    = 0x06
	rmcpNoAck      = 0xff // RMCP sequence number: no RMCP ACK wanted
	classASF       = 0x06
	classIPMI      = 0x07
	authTypeNone   = 0x00 // IPMI v1.5 session header, no authentication
	authTypeRMCPP  = 0x06 // IPMI v2.0 RMCP+ session header
	flagEncrypted  = 0x80
	flagAuthed     = 0x40
	nextHeaderIPMI = 0x07 // Next Header field of the integrity trailer

	rmcpHeaderLen  = 4
	v20HeaderLen   = 12 // auth type, payload type, session ID, sequence, length
	v20OEMExtraLen = 6  // OEM IANA + OEM payload ID for payload type 02h
	v15HeaderLen   = 10 // auth type, sequence, session ID, length (no AuthCode)

	// maxPacket bounds what we read; a real RMCP+ packet fits an Ethernet
	// frame, and SOL packets are at most a few hundred bytes.
	maxPacket = 2048
)

// errMalformed marks packets that cannot be parsed. They are dropped and
// counted, never answered.
var errMalformed = errors.New("malformed packet")

// packet is an inbound RMCP packet after parsing, before any cryptographic
// check. Slices alias the buffer the packet was read into.
type packet struct {
	class       uint8
	authType    uint8
	payloadType types.PayloadType
	encrypted   bool
	authed      bool
	sessionID   uint32
	seq         uint32
	payload     []byte // session payload (still encrypted when encrypted)
	signed      []byte // bytes an integrity AuthCode covers (auth type .. next header)
	authCode    []byte // the AuthCode itself
	asf         []byte // ASF message (class 6) after the RMCP header
}

// parsePacket splits an RMCP packet into its parts. macLen is the length of
// the integrity AuthCode the session negotiated (0 before a session), needed
// because the trailer's pad length is implied, not stated up front. It
// never panics and never allocates; every length it trusts is checked.
func parsePacket(b []byte, macLen int) (packet, error) {
	var p packet
	if len(b) < rmcpHeaderLen || b[0] != rmcpVersion {
		return p, fmt.Errorf("%w: no rmcp header", errMalformed)
	}
	p.class = b[3] & 0x1f
	if b[3]&0x80 != 0 {
		return p, fmt.Errorf("%w: rmcp ack", errMalformed)
	}
	body := b[rmcpHeaderLen:]
	switch p.class {
	case classASF:
		p.asf = body
		return p, nil
	case classIPMI:
	default:
		return p, fmt.Errorf("%w: rmcp class %#x", errMalformed, p.class)
	}
	if len(body) < 1 {
		return p, fmt.Errorf("%w: empty ipmi message", errMalformed)
	}
	p.authType = body[0]
	switch p.authType {
	case authTypeRMCPP:
		return parseV20(p, body, macLen)
	case authTypeNone:
		return parseV15(p, body)
	default:
		// IPMI v1.5 authenticated sessions (MD5, ...) are never opened here.
		return p, fmt.Errorf("%w: ipmi v1.5 auth type %#x", errMalformed, p.authType)
	}
}

func parseV20(p packet, body []byte, macLen int) (packet, error) {
	if len(body) < v20HeaderLen {
		return p, fmt.Errorf("%w: short rmcp+ header", errMalformed)
	}
	p.encrypted = body[1]&flagEncrypted != 0
	p.authed = body[1]&flagAuthed != 0
	p.payloadType = types.PayloadType(body[1] & 0x3f)
	h := 2
	if p.payloadType == types.PayloadTypeOEM {
		h += v20OEMExtraLen
		if len(body) < v20HeaderLen+v20OEMExtraLen {
			return p, fmt.Errorf("%w: short rmcp+ oem header", errMalformed)
		}
	}
	p.sessionID = binary.LittleEndian.Uint32(body[h:])
	p.seq = binary.LittleEndian.Uint32(body[h+4:])
	n := int(binary.LittleEndian.Uint16(body[h+8:]))
	start := h + 10
	if n > len(body)-start {
		return p, fmt.Errorf("%w: payload length %d exceeds packet", errMalformed, n)
	}
	p.payload = body[start : start+n]
	if !p.authed || p.sessionID == 0 {
		// The trailer is absent outside a session and on unauthenticated
		// packets (§13.6, Table 13-8).
		return p, nil
	}
	// Authenticated: pad, pad length, next header, AuthCode. The AuthCode is
	// the last macLen bytes; everything from the auth type up to it is
	// signed, however the BMC chose to pad.
	rest := len(body) - start - n
	if macLen <= 0 || rest < 2+macLen {
		return p, fmt.Errorf("%w: short integrity trailer", errMalformed)
	}
	// The pad length and next header bytes are not checked: the AuthCode
	// covers them, and strictness about fields the spec calls reserved only
	// breaks odd firmware.
	end := len(body) - macLen
	p.signed = body[:end]
	p.authCode = body[end:]
	return p, nil
}

func parseV15(p packet, body []byte) (packet, error) {
	if len(body) < v15HeaderLen {
		return p, fmt.Errorf("%w: short ipmi v1.5 header", errMalformed)
	}
	p.seq = binary.LittleEndian.Uint32(body[1:])
	p.sessionID = binary.LittleEndian.Uint32(body[5:])
	n := int(body[9])
	if n > len(body)-v15HeaderLen {
		return p, fmt.Errorf("%w: v1.5 length %d exceeds packet", errMalformed, n)
	}
	p.payloadType = types.PayloadTypeIPMI
	p.payload = body[v15HeaderLen : v15HeaderLen+n]
	return p, nil
}

// appendRMCPHeader starts an IPMI-class RMCP packet.
func appendRMCPHeader(b []byte) []byte {
	return append(b, rmcpVersion, 0x00, rmcpNoAck, classIPMI)
}

// appendV15Presession frames msg as an IPMI v1.5 packet outside a session
// (auth type none, sequence and session ID zero). Get Channel Authentication
// Capabilities goes this way, like ipmitool and FreeIPMI send it, because
// every BMC answers that form before a session exists.
func appendV15Presession(b, msg []byte) []byte {
	b = appendRMCPHeader(b)
	b = append(b, authTypeNone, 0, 0, 0, 0, 0, 0, 0, 0, uint8(len(msg)))
	return append(b, msg...)
}

// appendV20Presession frames an RMCP+ session-setup payload (Open Session,
// RAKP): session ID and sequence zero, neither encrypted nor authenticated.
func appendV20Presession(b []byte, pt types.PayloadType, payload []byte) []byte {
	b = appendRMCPHeader(b)
	b = append(b, authTypeRMCPP, uint8(pt), 0, 0, 0, 0, 0, 0, 0, 0)
	b = binary.LittleEndian.AppendUint16(b, uint16(len(payload)))
	return append(b, payload...)
}
