package rmcp

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"time"

	"github.com/rmm-project/rmm/bmc"
)

// ASF message constants (DMTF ASF 2.0 §3.2.2).
const (
	asfIANA     = 4542
	asfPing     = 0x80
	asfPong     = 0x40
	asfHeader   = 8
	pongDataLen = 16
)

// Pong is a decoded RMCP/ASF Presence Pong.
type Pong struct {
	IANA               uint32 // enterprise number, network byte order on the wire
	OEM                uint32
	IPMI               bool  // supported entities bit 7
	ASFVersion         uint8 // supported entities bits 3:0
	SecurityExtensions bool  // supported interactions bit 7
	DASH               bool  // supported interactions bit 5
}

// appendPing appends a Presence Ping with the given message tag.
func appendPing(b []byte, tag uint8) []byte {
	b = append(b, rmcpVersion, 0x00, rmcpNoAck, classASF)
	b = binary.BigEndian.AppendUint32(b, asfIANA)
	return append(b, asfPing, tag, 0x00, 0x00)
}

// ParsePong decodes a Presence Pong answering the ping with tag. ASF
// fields are big-endian, unlike IPMI's: go-ipmi's client reads the
// enterprise number little-endian and reports 4542 as 3203334144.
func ParsePong(b []byte, tag uint8) (Pong, error) {
	var p Pong
	pk, err := parsePacket(b, 0)
	if err != nil {
		return p, err
	}
	a := pk.asf
	if pk.class != classASF || len(a) < asfHeader {
		return p, fmt.Errorf("%w: not an asf message", errMalformed)
	}
	if binary.BigEndian.Uint32(a) != asfIANA || a[4] != asfPong {
		return p, fmt.Errorf("%w: asf message type %#02x", errMalformed, a[4])
	}
	if a[5] != tag {
		return p, fmt.Errorf("%w: pong tag %d, want %d", errMalformed, a[5], tag)
	}
	n := int(a[7])
	if n < pongDataLen || len(a) < asfHeader+pongDataLen {
		return p, fmt.Errorf("%w: pong data of %d bytes", errMalformed, n)
	}
	d := a[asfHeader:]
	p.IANA = binary.BigEndian.Uint32(d[0:])
	p.OEM = binary.BigEndian.Uint32(d[4:])
	p.IPMI = d[8]&0x80 != 0
	p.ASFVersion = d[8] & 0x0f
	p.SecurityExtensions = d[9]&0x80 != 0
	p.DASH = d[9]&0x20 != 0
	return p, nil
}

// Ping sends Presence Pings to ap (retransmitted like session requests,
// inside ctx's deadline) and returns the first valid Pong and its round
// trip.
func Ping(ctx context.Context, ap netip.AddrPort) (Pong, time.Duration, error) {
	conn, err := bmc.DialIP(ctx, "udp", ap.String())
	if err != nil {
		return Pong{}, 0, fmt.Errorf("ping: %w", err)
	}
	s := &Session{conn: conn, addr: ap, rbuf: make([]byte, maxPacket)}
	defer s.abort()
	var tag uint8
	var pong Pong
	var sent, got time.Time
	err = s.exchange(ctx, "asf presence ping", callOpts{},
		func() ([]byte, error) {
			tag++
			sent = time.Now()
			return appendPing(nil, tag), nil
		},
		func(b []byte) (verdict, error) {
			p, err := ParsePong(b, tag)
			if err != nil {
				return keepWaiting, nil
			}
			pong, got = p, time.Now()
			return answered, nil
		})
	if err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) {
			err = fmt.Errorf("%w: %w", bmc.ErrTimeout, err)
		}
		return Pong{}, 0, err
	}
	return pong, got.Sub(sent), nil
}
