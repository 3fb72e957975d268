package rmcp

import (
	"errors"

	"github.com/bougou/go-ipmi/pkg/types"
)

// Addresses of the two ends of an IPMI LAN message (IPMI v2.0 §13.8): the
// BMC is always responder 20h, and a remote console uses software ID 81h.
const (
	bmcSlaveAddr   = 0x20
	consoleSWID    = 0x81
	maxRqSeq       = 0x3f // rqSeq is 6 bits
	ipmiRespMinLen = 7    // rqAddr netFn/lun cs1 rsAddr rqSeq/lun cmd cc (cs2 may be missing)
)

var errShortMessage = errors.New("ipmi message too short")

// appendRequest appends an IPMI LAN request message (§13.8) to dst. It is
// hand-rolled rather than go-ipmi's IPMIRequest because that packs the
// message twice to compute its checksums; this is on every request's path.
func appendRequest(dst []byte, netFn types.NetFn, cmd, rqSeq uint8, data []byte) []byte {
	start := len(dst)
	dst = append(dst, bmcSlaveAddr, uint8(netFn)<<2, 0, consoleSWID, rqSeq<<2, cmd)
	dst[start+2] = checksum(dst[start : start+2])
	dst = append(dst, data...)
	return append(dst, checksum(dst[start+3:]))
}

// checksum is the IPMB two's-complement checksum: the bytes plus the
// checksum sum to zero modulo 256.
func checksum(b []byte) uint8 {
	var c uint8
	for _, x := range b {
		c += x
	}
	return -c
}

// response is a decoded IPMI LAN response message.
type response struct {
	netFn types.NetFn // the response NetFn (request NetFn + 1)
	rqSeq uint8
	cmd   uint8
	cc    uint8
	data  []byte // aliases the packet buffer
}

// parseResponse decodes an IPMI LAN response. Checksums are verified only
// when verify is set: on packets whose integrity an AuthCode already proved
// they only catch BMC firmware bugs, and refusing an authenticated answer
// over a bad checksum would make such a BMC unusable for no gain.
func parseResponse(b []byte, verify bool) (response, error) {
	if len(b) < ipmiRespMinLen {
		return response{}, errShortMessage
	}
	r := response{
		netFn: types.NetFn(b[1] >> 2),
		rqSeq: b[4] >> 2,
		cmd:   b[5],
		cc:    b[6],
	}
	if len(b) > ipmiRespMinLen {
		r.data = b[ipmiRespMinLen : len(b)-1]
	}
	if verify {
		if checksum(b[0:2]) != b[2] {
			return response{}, errors.New("ipmi header checksum mismatch")
		}
		if len(b) > ipmiRespMinLen && checksum(b[3:len(b)-1]) != b[len(b)-1] {
			return response{}, errors.New("ipmi data checksum mismatch")
		}
	}
	return r, nil
}
