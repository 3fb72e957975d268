package ipmi

import (
	"context"
	"net/netip"
	"time"

	"github.com/rmm-project/rmm/bmc/ipmi/rmcp"
)

// PingResult is what a BMC says in its RMCP/ASF Presence Pong.
type PingResult struct {
	// IANA is the enterprise number in the pong: 4542 (ASF) unless the BMC
	// has OEM capabilities, then the vendor's.
	IANA uint32 `json:"iana"`
	// OEM is the OEM-defined field (zero for plain ASF).
	OEM uint32 `json:"oem,omitempty"`
	// IPMI reports whether the BMC says it speaks IPMI.
	IPMI bool `json:"ipmi"`
	// ASFVersion is the supported ASF version nibble (1 = ASF 1.0).
	ASFVersion uint8 `json:"asf_version"`
	// SecurityExtensions and DASH are the "supported interactions" bits.
	SecurityExtensions bool `json:"security_extensions,omitempty"`
	DASH               bool `json:"dash,omitempty"`
	// RTT is the round trip of the answered ping.
	RTT time.Duration `json:"rtt"`
}

// Ping sends an RMCP/ASF Presence Ping to ap and decodes the Pong. It needs
// no credentials, so `rmm audit` uses it to tell "nothing answers" from
// "answers but refuses us". Retransmits like a session request, inside
// ctx's deadline; the socket is closed before it returns.
func Ping(ctx context.Context, ap netip.AddrPort) (PingResult, error) {
	p, rtt, err := rmcp.Ping(ctx, ap)
	if err != nil {
		return PingResult{}, err
	}
	return PingResult{
		IANA: p.IANA, OEM: p.OEM, IPMI: p.IPMI, ASFVersion: p.ASFVersion,
		SecurityExtensions: p.SecurityExtensions, DASH: p.DASH, RTT: rtt,
	}, nil
}
