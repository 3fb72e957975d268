package rmcp

import (
	"fmt"

	"github.com/bougou/go-ipmi/pkg/types"
)

// Suite is an RMCP+ cipher suite: the authentication (RAKP), integrity and
// confidentiality algorithms negotiated in Open Session.
type Suite struct {
	ID        int
	Auth      types.AuthAlg
	Integrity types.IntegrityAlg
	Crypt     types.CryptAlg
}

// suites lists the cipher suites this package implements (IPMI v2.0 Table
// 22-20). Suite 0 (no authentication) is deliberately absent: it accepts any
// password. The table is read-only.
var suites = map[int]Suite{
	1:  {1, types.AuthAlg_HMAC_SHA1, types.IntegrityAlg_None, types.CryptAlg_None},
	2:  {2, types.AuthAlg_HMAC_SHA1, types.IntegrityAlg_HMAC_SHA1_96, types.CryptAlg_None},
	3:  {3, types.AuthAlg_HMAC_SHA1, types.IntegrityAlg_HMAC_SHA1_96, types.CryptAlg_AES_CBC_128},
	15: {15, types.AuthAlg_HMAC_SHA256, types.IntegrityAlg_None, types.CryptAlg_None},
	16: {16, types.AuthAlg_HMAC_SHA256, types.IntegrityAlg_HMAC_SHA256_128, types.CryptAlg_None},
	17: {17, types.AuthAlg_HMAC_SHA256, types.IntegrityAlg_HMAC_SHA256_128, types.CryptAlg_AES_CBC_128},
}

// AutoSuites returns the order tried when the caller asks for suite 0
// ("auto"): SHA-256 first, then the SHA-1 suite every BMC since 2004 speaks.
// Only an explicit "cipher suite not supported" answer moves on to the next
// one; a timeout does not, because a BMC that is down would then cost one
// timeout per suite.
func AutoSuites() []int { return []int{17, 3} }

// SupportedSuites lists the suite IDs that may be requested explicitly.
func SupportedSuites() []int { return []int{1, 2, 3, 15, 16, 17} }

// LookupSuite returns the algorithms of a cipher suite ID.
func LookupSuite(id int) (Suite, error) {
	s, ok := suites[id]
	if !ok {
		return Suite{}, fmt.Errorf("cipher suite %d is not supported by rmm (use 17 or 3, or 1, 2, 15, 16)", id)
	}
	return s, nil
}

// Encrypted reports whether payloads are AES-CBC-128 encrypted.
func (s Suite) Encrypted() bool { return s.Crypt == types.CryptAlg_AES_CBC_128 }

// Authenticated reports whether packets carry an integrity AuthCode.
func (s Suite) Authenticated() bool { return s.Integrity != types.IntegrityAlg_None }
