package bmc

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"
)

// noResolver is a resolver that fails every lookup without sending a packet.
// It backs every net.Dialer rmm uses, so even a bug that passes a name to a
// dialer cannot reach DNS.
var noResolver = &net.Resolver{
	PreferGo: true,
	Dial: func(ctx context.Context, network, address string) (net.Conn, error) {
		return nil, ErrHostname
	},
}

// DialIP connects to address, which must be an IP literal with a port
// ("10.0.5.11:623", "[fd00::11]:443"). A host name is refused with
// ErrHostname before anything is sent: rmm never asks DNS. network is
// "udp" or "tcp" (or their 4/6 variants).
func DialIP(ctx context.Context, network, address string) (net.Conn, error) {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %q: %w", network, address, ErrHostname)
	}
	d := net.Dialer{Resolver: noResolver, KeepAlive: 30 * time.Second}
	c, err := d.DialContext(ctx, network, ap.String())
	if err != nil {
		return nil, classifyNetErr(err)
	}
	return c, nil
}

// classifyNetErr wraps a network error with ErrTimeout or ErrUnreachable so
// callers can report a typed outcome.
func classifyNetErr(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) {
		return err
	}
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
		return fmt.Errorf("%w: %w", ErrTimeout, err)
	}
	return fmt.Errorf("%w: %w", ErrUnreachable, err)
}

// ClassifyNetErr is classifyNetErr for providers: it marks a network error
// as a timeout or unreachable, leaving context cancellation alone.
func ClassifyNetErr(err error) error { return classifyNetErr(err) }

// CertFingerprint connects to a TLS endpoint (an IP literal and port) and
// returns the SHA-256 fingerprint of its leaf certificate, lowercase hex,
// without trusting or rejecting it. rmm known-bmcs uses it so an operator
// can compare a changed certificate with what the BMC's console shows.
func CertFingerprint(ctx context.Context, ap netip.AddrPort) (string, error) {
	conn, err := DialIP(ctx, "tcp", ap.String())
	if err != nil {
		return "", err
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	tc := tls.Client(conn, &tls.Config{InsecureSkipVerify: true, ServerName: ap.Addr().String()}) // #nosec: fingerprint only, nothing is sent
	if err := tc.HandshakeContext(ctx); err != nil {
		return "", classifyNetErr(err)
	}
	certs := tc.ConnectionState().PeerCertificates
	if len(certs) == 0 {
		return "", fmt.Errorf("%w: no certificate", ErrProtocol)
	}
	sum := sha256.Sum256(certs[0].Raw)
	return hex.EncodeToString(sum[:]), nil
}
