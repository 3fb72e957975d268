package rmcp

import (
	"errors"
	"fmt"
	"strings"

	"github.com/bougou/go-ipmi/pkg/types"
	"github.com/rmm-project/rmm/bmc"
)

// StatusError is a non-zero RMCP+ status code in an Open Session or RAKP
// answer (IPMI v2.0 §13.24). It unwraps to the bmc sentinel that says what
// kind of failure it is, and carries a hint for the ones with a known fix.
type StatusError struct {
	Step  string // "open session", "rakp 2", "rakp 4"
	Code  types.RmcpStatusCode
	Suite int // the cipher suite proposed
}

// Error names the step, the status and, for refused algorithms, the suite.
func (e *StatusError) Error() string {
	if e.Unwrap() == bmc.ErrUnsupported {
		return fmt.Sprintf("%s: the bmc refused cipher suite %d (status %#02x: %s)", e.Step, e.Suite, uint8(e.Code), strings.ToLower(e.Code.String()))
	}
	return fmt.Sprintf("%s: the bmc answered status %#02x (%s)", e.Step, uint8(e.Code), strings.ToLower(e.Code.String()))
}

// suiteRefused reports whether err is an Open Session refused for its
// algorithms, the only failure after which the next cipher suite is tried.
func suiteRefused(err error) bool {
	var se *StatusError
	return errors.As(err, &se) && se.Step == "open session" && se.Unwrap() == bmc.ErrUnsupported
}

// Unwrap maps the status code to a sentinel.
func (e *StatusError) Unwrap() error {
	switch e.Code {
	case types.RmcpStatusCodeNoResToCreateSess, types.RmcpStatusCodeNoResToCreateSessAtRole:
		return bmc.ErrBusy
	case types.RmcpStatusCodeInvalidAuthAlg, types.RmcpStatusCodeInvalidIntegrityAlg,
		types.RmcpStatusCodeInvalidConfidentAlg, types.RmcpStatusCodeNoCipherSuiteMatch,
		types.RmcpStatusCodeNoMatchingAuthPayload, types.RmcpStatusCodeNoMatchingIntegrityPayload:
		return bmc.ErrUnsupported
	case types.RmcpStatusCodeUnauthorizedName, types.RmcpStatusCodeInvalidRole,
		types.RmcpStatusCodeUnauthorizedRoleOfPriLevel, types.RmcpStatusCodeInvalidNameLength,
		types.RmcpStatusCodeInvalidIntegrityCheckValue, types.RmcpStatusCodeUnauthorizedGUID:
		return bmc.ErrAuth
	}
	return bmc.ErrProtocol
}

// Hint says what to do about the failure.
func (e *StatusError) Hint() string {
	switch e.Code {
	case types.RmcpStatusCodeNoResToCreateSess, types.RmcpStatusCodeNoResToCreateSessAtRole:
		return "the BMC's session table is full (other tools, or sessions that were never closed); retry in a minute, or close sessions with 'ipmitool session info all'"
	case types.RmcpStatusCodeUnauthorizedName:
		return "the BMC does not know this user name: check the user in the inventory's credentials"
	case types.RmcpStatusCodeInvalidRole, types.RmcpStatusCodeUnauthorizedRoleOfPriLevel:
		return "the user may not log in at the privilege rmm needs: give it ADMINISTRATOR (or at least OPERATOR) on the LAN channel"
	}
	if e.Unwrap() == bmc.ErrUnsupported {
		return suiteHint
	}
	return ""
}

// suiteHint names the cipher suites to try when a BMC refuses one.
const suiteHint = "the BMC refused the RMCP+ cipher suite: set cipher_suite to 3 (HMAC-SHA1, AES) or 17 (HMAC-SHA256, AES) for this host; rmm also speaks 1, 2, 15 and 16, never 0"

// AuthError is an authentication failure detected on our side: the BMC's
// RAKP proof does not match what the password predicts.
type AuthError struct {
	Msg  string
	hint string
}

// Error says what did not match; it never contains the password.
func (e *AuthError) Error() string { return "authentication failed: " + e.Msg }

// Unwrap makes AuthError an ErrAuth.
func (e *AuthError) Unwrap() error { return bmc.ErrAuth }

// Hint says what to check.
func (e *AuthError) Hint() string { return e.hint }

// CompletionError is an IPMI response with a non-zero completion code.
type CompletionError struct {
	Cmd  types.Command
	Code uint8
}

// Error names the command and its completion code.
func (e *CompletionError) Error() string {
	name := strings.ToLower(e.Cmd.Name)
	if name == "" {
		name = fmt.Sprintf("netfn %#02x cmd %#02x", uint8(e.Cmd.NetFn), e.Cmd.ID)
	}
	return fmt.Sprintf("%s: completion code %#02x (%s)", name, e.Code, strings.ToLower(types.StrCC(e.Cmd, e.Code)))
}

// Unwrap maps the completion code (IPMI v2.0 Table 5-2) to a sentinel.
func (e *CompletionError) Unwrap() error {
	switch e.Code {
	case 0xc0: // node busy
		return bmc.ErrBusy
	case 0xc1, 0xc2: // invalid command, invalid for this LUN
		return bmc.ErrUnsupported
	case 0xc3: // timeout while processing
		return bmc.ErrTimeout
	case 0xd4, 0xd6: // insufficient privilege, sub-function disabled
		return bmc.ErrAuth
	case 0xd5: // not supported in present state
		return bmc.ErrUnsupported
	}
	return bmc.ErrProtocol
}

// Hint explains the codes with a known cause.
func (e *CompletionError) Hint() string {
	switch e.Code {
	case 0xc1:
		return "the BMC does not implement this command"
	case 0xd4:
		return "the session's privilege is too low: give the user ADMINISTRATOR (or OPERATOR) on the LAN channel"
	}
	return ""
}

// IsCompletion reports whether err is a CompletionError with code cc.
func IsCompletion(err error, cc uint8) bool {
	var ce *CompletionError
	return errors.As(err, &ce) && ce.Code == cc
}
