package rmcp

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"hash"
	"io"

	ipmicrypto "github.com/bougou/go-ipmi/pkg/crypto"
	"github.com/bougou/go-ipmi/pkg/types"
)

// keys holds one session's keying material (IPMI v2.0 §13.31, §13.32) and
// the primitives built from it once, so that sealing a packet allocates
// nothing.
type keys struct {
	suite  Suite
	sik    []byte
	mac    hash.Hash    // HMAC keyed with K1, for packet integrity
	macLen int          // AuthCode length: 12 (SHA1-96) or 16 (SHA256-128)
	block  cipher.Block // AES-128 keyed with K2[:16]
	sum    [sha256.Size]byte
	random io.Reader // crypto/rand.Reader; IVs come from here
}

// errIntegrity marks packets whose AuthCode does not verify.
var errIntegrity = errors.New("integrity check failed")

// deriveKeys computes SIK, K1 and K2 with go-ipmi's pkg/crypto (checked
// against §13.31: SIK = HMAC_Kuid(Rm | Rc | RoleM | ULengthM | UNameM),
// K1/K2 = HMAC_SIK(const 01h/02h x20)) and prepares the integrity MAC and
// the AES block cipher. kuid is the password padded to 20 bytes; rmm uses
// one-key logins (no BMC key Kg).
func deriveKeys(s Suite, consoleRand, bmcRand []byte, role uint8, user string, kuid []byte) (*keys, error) {
	sik, k1, k2, err := ipmicrypto.DeriveSessionKeys(s.Auth, consoleRand, bmcRand, role, user, kuid)
	if err != nil {
		return nil, fmt.Errorf("derive session keys: %w", err)
	}
	k := &keys{suite: s, sik: sik, random: rand.Reader}
	switch s.Integrity {
	case types.IntegrityAlg_None:
	case types.IntegrityAlg_HMAC_SHA1_96:
		k.mac, k.macLen = hmac.New(sha1.New, k1), 12
	case types.IntegrityAlg_HMAC_SHA256_128:
		k.mac, k.macLen = hmac.New(sha256.New, k1), 16
	default:
		return nil, fmt.Errorf("integrity algorithm %s is not implemented", s.Integrity)
	}
	switch s.Crypt {
	case types.CryptAlg_None:
	case types.CryptAlg_AES_CBC_128:
		if len(k2) < 16 {
			return nil, errors.New("k2 shorter than an aes-128 key")
		}
		if k.block, err = aes.NewCipher(k2[:16]); err != nil {
			return nil, fmt.Errorf("aes key: %w", err)
		}
	default:
		return nil, fmt.Errorf("confidentiality algorithm %s is not implemented", s.Crypt)
	}
	return k, nil
}

// authCode computes the integrity AuthCode of data (§13.28.4), truncated
// to macLen. The result aliases k.sum and is valid until the next call.
func (k *keys) authCode(data []byte) []byte {
	k.mac.Reset()
	k.mac.Write(data)
	return k.mac.Sum(k.sum[:0])[:k.macLen]
}

// verify reports whether code is the AuthCode of data, in constant time.
func (k *keys) verify(data, code []byte) bool {
	if len(code) != k.macLen {
		return false
	}
	return subtle.ConstantTimeCompare(k.authCode(data), code) == 1
}

// appendEncrypted appends IV || AES-CBC(plain || pad) to dst (§13.29). The
// IV is 16 fresh bytes from crypto/rand for every packet, retransmissions
// included. The pad is 1, 2, 3, ... followed by the pad length, filling the
// last block.
func (k *keys) appendEncrypted(dst, plain []byte) ([]byte, error) {
	const bs = aes.BlockSize
	start := len(dst)
	dst = append(dst, make([]byte, bs)...)
	if _, err := io.ReadFull(k.random, dst[start:start+bs]); err != nil {
		return nil, fmt.Errorf("read iv from crypto/rand: %w", err)
	}
	body := len(dst)
	dst = append(dst, plain...)
	pad := bs - 1 - len(plain)%bs
	if pad == bs {
		pad = 0
	}
	for i := 1; i <= pad; i++ {
		dst = append(dst, byte(i))
	}
	dst = append(dst, byte(pad))
	prev := dst[start : start+bs]
	for off := body; off < len(dst); off += bs {
		blk := dst[off : off+bs]
		subtle.XORBytes(blk, blk, prev)
		k.block.Encrypt(blk, blk)
		prev = blk
	}
	return dst, nil
}

// decrypt decrypts IV || ciphertext in place and returns the plaintext with
// its pad removed. It checks every length first: go-ipmi's DecryptAES hands
// any length to CBC mode, which panics on a partial block, and its client
// slices data[0:16] of whatever arrived.
func (k *keys) decrypt(b []byte) ([]byte, error) {
	const bs = aes.BlockSize
	if len(b) < 2*bs || len(b)%bs != 0 {
		return nil, fmt.Errorf("%w: encrypted payload of %d bytes", errMalformed, len(b))
	}
	// Decrypt from the last block backwards so each block's predecessor
	// (its chaining value) is still ciphertext when it is needed.
	var tmp [bs]byte
	for off := len(b) - bs; off >= bs; off -= bs {
		blk := b[off : off+bs]
		k.block.Decrypt(tmp[:], blk)
		subtle.XORBytes(blk, tmp[:], b[off-bs:off])
	}
	plain := b[bs:]
	pad := int(plain[len(plain)-1])
	if pad >= bs || pad+1 > len(plain) {
		return nil, fmt.Errorf("%w: aes pad length %d", errMalformed, pad)
	}
	return plain[:len(plain)-1-pad], nil
}
