package cli

import (
	"context"
	"errors"
	"fmt"
)

// Exit codes, decided here and nowhere else. rmm --help lists them (see
// exitCodeHelp); rmm health uses the Nagios plugin convention instead, listed
// in its own help.
const (
	ExitOK          = 0   // every host succeeded
	ExitFailed      = 1   // one or more hosts failed (the rest were still done)
	ExitUsage       = 2   // bad flags, arguments or host selector
	ExitInventory   = 3   // inventory missing, unreadable or invalid
	ExitRefused     = 4   // a destructive action was not confirmed: declined, or no terminal and no --yes
	ExitInterrupted = 130 // SIGINT, SIGTERM or SIGHUP; what was done is in the audit journal
)

// Nagios plugin exit codes, used by rmm health.
const (
	NagiosOK       = 0
	NagiosWarning  = 1
	NagiosCritical = 2
	NagiosUnknown  = 3
)

const exitCodeHelp = `Exit codes:
  0    every host succeeded
  1    one or more hosts failed (the others were still done)
  2    usage: bad flags, arguments or host selector
  3    inventory missing, unreadable or invalid
  4    refused: a destructive action was not confirmed
  130  interrupted (SIGINT, SIGTERM, SIGHUP)
  rmm health uses the Nagios convention: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.
`

// ExitError carries an exit code with an error. Its message is printed on
// stderr unless Silent (the command already printed its own report).
type ExitError struct {
	Code   int
	Err    error
	Silent bool
}

func (e *ExitError) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("exit %d", e.Code)
	}
	return e.Err.Error()
}

func (e *ExitError) Unwrap() error { return e.Err }

// usageErrorf is a plain-sentence argument error (exit 2).
func usageErrorf(format string, args ...any) error {
	return &ExitError{Code: ExitUsage, Err: fmt.Errorf(format, args...)}
}

// silentExit ends the command with code after it has printed its own report.
func silentExit(code int) error {
	if code == ExitOK {
		return nil
	}
	return &ExitError{Code: code, Silent: true}
}

// exitCode maps an error returned by a command to the process exit code.
func exitCode(err error) int {
	if err == nil {
		return ExitOK
	}
	var ee *ExitError
	if errors.As(err, &ee) {
		return ee.Code
	}
	if errors.Is(err, context.Canceled) {
		return ExitInterrupted
	}
	return ExitFailed
}
