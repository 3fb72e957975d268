package cli

import (
	"io"
	"os"

	"golang.org/x/term"

	"github.com/rmm-project/rmm/secret"
)

// IOStreams is where a command reads and writes. Data goes to Out; progress,
// warnings, hints and summaries go to ErrOut (age's contract: a pipe of rmm's
// stdout only ever carries data). Tests build one over buffers and set the
// terminal flags they want to exercise.
type IOStreams struct {
	In     io.Reader
	Out    io.Writer
	ErrOut io.Writer

	// InTTY, OutTTY and ErrTTY say whether each stream is a terminal.
	InTTY, OutTTY, ErrTTY bool
	// Color is true when ErrOut/Out may carry ANSI colour (a terminal and
	// NO_COLOR unset).
	Color bool

	// InFd is stdin's file descriptor for raw mode (rmm console), -1 if
	// stdin is not a terminal.
	InFd int

	// Scrub holds every secret resolved in this process; Out and ErrOut
	// write through it.
	Scrub *secret.Scrubbers
}

// System returns streams over the process's stdin, stdout and stderr.
// Output passes through scrubbers that blank any resolved password.
func System() *IOStreams {
	sc := &secret.Scrubbers{}
	s := &IOStreams{
		In:     os.Stdin,
		Out:    sc.Wrap(os.Stdout),
		ErrOut: sc.Wrap(os.Stderr),
		InTTY:  term.IsTerminal(int(os.Stdin.Fd())),
		OutTTY: term.IsTerminal(int(os.Stdout.Fd())),
		ErrTTY: term.IsTerminal(int(os.Stderr.Fd())),
		InFd:   -1,
		Scrub:  sc,
	}
	if s.InTTY {
		s.InFd = int(os.Stdin.Fd())
	}
	_, noColor := os.LookupEnv("NO_COLOR")
	s.Color = s.ErrTTY && !noColor && os.Getenv("TERM") != "dumb"
	return s
}

// Test returns streams over the given buffers, none of them a terminal.
func Test(in io.Reader, out, errOut io.Writer) *IOStreams {
	return &IOStreams{In: in, Out: out, ErrOut: errOut, InFd: -1, Scrub: &secret.Scrubbers{}}
}
