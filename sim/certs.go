package sim

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/rmm-project/rmm/sim/redfishsim"
)

// WithCertDir makes every Redfish BMC present the certificate kept in
// dir/<ip>_<port>.pem (certificate and private key, PEM), made on first use
// (the file mode 0600, the directory 0700). Without it each start makes new
// self-signed certificates, and rmm's trust on first use (known_bmcs)
// rightly refuses the second run of the same fleet: to a client that is a
// BMC whose certificate changed.
func WithCertDir(dir string) Option { return func(o *options) { o.certDir = dir } }

// DefaultCertDir is where `rmm sim` keeps its certificates:
// $XDG_STATE_HOME/rmm/sim-certs, else ~/.local/state/rmm/sim-certs, beside
// rmm's own state (known_bmcs).
func DefaultCertDir(getenv func(string) string) string {
	if d := getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "rmm", "sim-certs")
	}
	home := getenv("HOME")
	if home == "" {
		home = "/root"
	}
	return filepath.Join(home, ".local", "state", "rmm", "sim-certs")
}

// certRenewBefore is how long before it expires a kept certificate is
// replaced (they are made for ten years).
const certRenewBefore = 24 * time.Hour

// certFor returns the certificate kept for ap in dir, making and storing
// one when there is none, or when the one there is for another address or
// about to expire. A file that is not a certificate and key is an error
// naming it: it is not the simulator's to overwrite. Concurrent callers (two
// `rmm sim` started at once) end up with the same certificate: a new file
// appears complete or not at all.
func certFor(dir string, ap netip.AddrPort) (tls.Certificate, error) {
	path := filepath.Join(dir, fmt.Sprintf("%s_%d.pem", ap.Addr().Unmap(), ap.Port()))
	for range 3 { // a concurrent writer can win a race at most once per step
		b, err := os.ReadFile(path)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			cert, err := newCert(dir, path, ap.Addr(), false)
			if errors.Is(err, fs.ErrExist) {
				continue // another process made it meanwhile: load that one
			}
			return cert, err
		case err != nil:
			return tls.Certificate{}, fmt.Errorf("certificate %s: %w", path, err)
		}
		cert, err := tls.X509KeyPair(b, b)
		if err != nil {
			return tls.Certificate{}, fmt.Errorf("certificate %s: %w (delete the file to have a new one made)", path, err)
		}
		if certFits(cert, ap.Addr()) {
			return cert, nil
		}
		return newCert(dir, path, ap.Addr(), true)
	}
	return tls.Certificate{}, fmt.Errorf("certificate %s: changed while being read", path)
}

// certFits reports whether cert names ip and stays valid for a while.
func certFits(cert tls.Certificate, ip netip.Addr) bool {
	leaf := cert.Leaf
	if leaf == nil {
		return false
	}
	if time.Now().Add(certRenewBefore).After(leaf.NotAfter) {
		return false
	}
	return slices.ContainsFunc(leaf.IPAddresses, func(a net.IP) bool {
		got, ok := netip.AddrFromSlice(a)
		return ok && got.Unmap() == ip.Unmap()
	})
}

// newCert makes a certificate for ip and stores it at path: written to a
// temporary file in dir, then linked into place (failing with fs.ErrExist
// when path appeared meanwhile) or, with replace, renamed over it.
func newCert(dir, path string, ip netip.Addr, replace bool) (tls.Certificate, error) {
	cert, err := redfishsim.SelfSigned(ip)
	if err != nil {
		return tls.Certificate{}, err
	}
	key, err := x509.MarshalPKCS8PrivateKey(cert.PrivateKey)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("certificate %s: %w", path, err)
	}
	data := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Certificate[0]})
	data = append(data, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: key})...)

	if err := os.MkdirAll(dir, 0o700); err != nil {
		return tls.Certificate{}, fmt.Errorf("certificate directory: %w", err)
	}
	f, err := os.CreateTemp(dir, ".new-*.pem") // mode 0600
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("certificate %s: %w", path, err)
	}
	tmp := f.Name()
	defer os.Remove(tmp) // after Link or a failure; a no-op after Rename
	_, werr := f.Write(data)
	if serr := f.Sync(); werr == nil {
		werr = serr
	}
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		return tls.Certificate{}, fmt.Errorf("certificate %s: %w", path, werr)
	}
	if replace {
		err = os.Rename(tmp, path)
	} else {
		err = os.Link(tmp, path)
	}
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("certificate %s: %w", path, err)
	}
	return cert, nil
}
