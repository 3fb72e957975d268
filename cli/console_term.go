package cli

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
	"golang.org/x/term"

	"github.com/rmm-project/rmm/secret"
)

// This file holds what rmm console needs from the local terminal: raw mode
// that is undone on every way out, a keyboard reader that can be stopped,
// the escape-sequence parser, the screen the host's output and rmm's own
// notes share, and the time-stamped log.

// termGuard puts stdin's terminal into raw mode and restores it exactly
// once, whichever way the console ends: quit, error, BMC drop, signal, or a
// panic in any goroutine of the console (each one defers guard.onPanic).
type termGuard struct {
	fd    int // -1: stdin is not a terminal, nothing to do
	mu    sync.Mutex
	state *term.State
}

func newTermGuard(s *IOStreams) *termGuard {
	g := &termGuard{fd: -1}
	if s.InTTY && s.InFd >= 0 {
		g.fd = s.InFd
	}
	return g
}

// makeRaw switches the terminal to raw mode: every key, Ctrl-C included,
// goes to the host, and nothing is echoed locally (the host echoes).
func (g *termGuard) makeRaw() error {
	if g.fd < 0 {
		return nil
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	st, err := term.MakeRaw(g.fd)
	if err != nil {
		return fmt.Errorf("terminal: raw mode: %w", err)
	}
	g.state = st
	return nil
}

// raw reports whether the terminal is in raw mode now, so messages know
// to end lines with \r\n themselves (raw mode turns off output
// processing).
func (g *termGuard) raw() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.state != nil
}

// restore puts the terminal back as it was; later calls do nothing. After
// an ssh drop the terminal is gone and the error is ignored: there is
// nothing left to restore.
func (g *termGuard) restore() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.state == nil {
		return
	}
	_ = term.Restore(g.fd, g.state)
	g.state = nil
}

// onPanic restores the terminal before a panic in a console goroutine
// ends the process, so the crash report is readable and the shell usable.
// Use as: defer g.onPanic().
func (g *termGuard) onPanic() {
	if r := recover(); r != nil {
		g.restore()
		panic(r)
	}
}

// keyEvent is what the keyboard produced, after escape processing.
type keyEvent struct {
	kind keyKind
	data []byte // keyData: bytes for the host
	err  error  // keyEOF: why input ended (nil for a plain EOF)
}

type keyKind int

const (
	keyData  keyKind = iota // keystrokes for the host
	keyBreak                // escape B: send a serial break
	keyQuit                 // escape .: end the session
	keyHelp                 // escape ?: list the escapes
	keyEOF                  // stdin closed or failed
)

// escapeParser turns typed bytes into events. Like ssh's ~, the escape
// character counts only at the start of a line (after Enter, or as the
// first key of the session): typed in the middle of a line it is an
// ordinary character, so a shell's "make && reboot" goes to the host as
// typed. At the start of a line:
//
//	&.  quit          &B  send break (also &b)
//	&?  help          &&  one literal &
//
// and the escape followed by anything else sends both characters.
type escapeParser struct {
	esc     byte
	bol     bool // at the beginning of a line
	pending bool // saw the escape at the beginning of a line
}

func newEscapeParser(esc byte) *escapeParser { return &escapeParser{esc: esc, bol: true} }

// feed parses b and returns the events it completes, in order. Data for
// the host is batched into as few events as possible.
func (p *escapeParser) feed(b []byte) []keyEvent {
	var evs []keyEvent
	var data []byte
	flush := func() {
		if len(data) > 0 {
			evs = append(evs, keyEvent{kind: keyData, data: data})
			data = nil
		}
	}
	for _, c := range b {
		if p.pending {
			p.pending = false
			switch c {
			case '.':
				flush()
				return append(evs, keyEvent{kind: keyQuit}) // nothing after quit matters
			case 'B', 'b':
				flush()
				evs = append(evs, keyEvent{kind: keyBreak})
				p.bol = true
				continue
			case '?':
				flush()
				evs = append(evs, keyEvent{kind: keyHelp})
				p.bol = true
				continue
			case p.esc:
				data = append(data, p.esc)
				p.bol = false
				continue
			}
			data = append(data, p.esc)
			// c is handled below as an ordinary key.
		} else if p.bol && c == p.esc {
			p.pending = true
			continue
		}
		data = append(data, c)
		p.bol = c == '\r' || c == '\n'
	}
	flush()
	return evs
}

// end is called at EOF: an escape typed last is sent as itself.
func (p *escapeParser) end() []keyEvent {
	if p.pending {
		p.pending = false
		return []keyEvent{{kind: keyData, data: []byte{p.esc}}}
	}
	return nil
}

// escapeHelp lists the escapes, for &? and --help.
func escapeHelp(esc byte) string {
	e := string(esc)
	return "escapes (at the start of a line, i.e. after Enter):\n" +
		"  " + e + ".  quit: close the console and its session\n" +
		"  " + e + "B  send a serial break (then a key: Linux magic SysRq)\n" +
		"  " + e + "?  this help\n" +
		"  " + e + e + "  send " + e + " itself\n"
}

// parseEscape reads -e: one character, or ^X for a control character.
// Characters that are escape commands themselves would be ambiguous.
func parseEscape(s string) (byte, error) {
	var c byte
	switch {
	case len(s) == 1:
		c = s[0]
	case len(s) == 2 && s[0] == '^' && s[1] >= '@' && s[1] <= '_':
		c = s[1] ^ 0x40
	case len(s) == 2 && s[0] == '^' && s[1] >= 'a' && s[1] <= 'z':
		c = (s[1] - 'a' + 'A') ^ 0x40
	default:
		return 0, usageErrorf("--escape %q: want one character (&, ~, %%) or ^X for a control character", s)
	}
	switch c {
	case '.', '?', 'B', 'b', '\r', '\n', 0x7f:
		return 0, usageErrorf("--escape %q: that key is itself an escape command or Enter; pick another, e.g. & or ~", s)
	}
	if c >= 0x80 {
		return 0, usageErrorf("--escape %q: want an ASCII character", s)
	}
	return c, nil
}

// keyboard reads stdin on its own goroutine and delivers escape-parsed
// events. When stdin is a file (a terminal or a pipe) it polls, so stop
// really ends the goroutine; an arbitrary reader (tests) ends at EOF.
type keyboard struct {
	events chan keyEvent
	stop   chan struct{}
	done   chan struct{}
	once   sync.Once
}

// keyPoll bounds how long the keyboard goroutine takes to notice stop.
const keyPoll = 50 * time.Millisecond

func startKeyboard(s *IOStreams, esc byte, guard *termGuard) *keyboard {
	k := &keyboard{events: make(chan keyEvent), stop: make(chan struct{}), done: make(chan struct{})}
	fd := -1
	if s.InFd >= 0 {
		fd = s.InFd
	} else if f, ok := s.In.(*os.File); ok {
		fd = int(f.Fd())
	}
	go func() {
		defer close(k.done)
		defer guard.onPanic()
		p := newEscapeParser(esc)
		buf := make([]byte, 1024)
		for {
			n, err := k.read(s.In, fd, buf)
			if n > 0 {
				for _, ev := range p.feed(buf[:n]) {
					if !k.send(ev) {
						return
					}
				}
			}
			if err != nil {
				for _, ev := range p.end() {
					if !k.send(ev) {
						return
					}
				}
				switch {
				case s.InTTY && fd >= 0:
					// A raw terminal never reads as ended (Ctrl-D is a key
					// for the host): EOF or EIO means it hung up.
					err = errHangup
				case errors.Is(err, io.EOF):
					err = nil
				}
				k.send(keyEvent{kind: keyEOF, err: err})
				return
			}
		}
	}()
	return k
}

// errStopped ends the read loop when stop was called.
var errStopped = errors.New("keyboard stopped")

// errHangup is the terminal going away (the ssh connection dropped).
var errHangup = errors.New("the terminal hung up")

// read returns the next bytes typed. On a file descriptor it waits with
// poll in short slices so that it can see stop.
func (k *keyboard) read(r io.Reader, fd int, buf []byte) (int, error) {
	if fd < 0 {
		if r == nil {
			return 0, io.EOF // no stdin at all: nothing will ever be typed
		}
		return r.Read(buf)
	}
	for {
		select {
		case <-k.stop:
			return 0, errStopped
		default:
		}
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		n, err := unix.Poll(fds, int(keyPoll/time.Millisecond))
		if errors.Is(err, unix.EINTR) || (err == nil && n == 0) {
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("stdin: %w", err)
		}
		m, err := unix.Read(fd, buf)
		switch {
		case errors.Is(err, unix.EINTR), errors.Is(err, unix.EAGAIN):
			continue
		case err != nil:
			return 0, fmt.Errorf("stdin: %w", err) // EIO: the terminal hung up
		case m == 0:
			return 0, io.EOF
		}
		return m, nil
	}
}

func (k *keyboard) send(ev keyEvent) bool {
	select {
	case k.events <- ev:
		return true
	case <-k.stop:
		return false
	}
}

// close stops the goroutine and, when it reads a file descriptor, waits
// for it (at most one poll slice). On an arbitrary reader it cannot wait:
// a blocked Read ends when the reader does.
func (k *keyboard) close(waitable bool) {
	k.once.Do(func() { close(k.stop) })
	if waitable {
		<-k.done
	}
}

// screen is the terminal the host's output and rmm's notes share. Host
// bytes are written as they arrive, unbuffered; notes start on a line of
// their own and end with \r\n while the terminal is raw. A log, when set,
// gets both, time-stamped per line.
type screen struct {
	mu      sync.Mutex
	out     io.Writer // the host's output
	errOut  io.Writer // rmm's notes
	guard   *termGuard
	log     *stampedLog
	midLine bool // the last host byte was not a newline
	host    string
}

// write passes host output on. A write error means the terminal is gone
// (the ssh connection dropped): the session cannot continue.
func (s *screen) write(b []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(b) == 0 {
		return nil
	}
	s.midLine = b[len(b)-1] != '\n'
	if s.log != nil {
		s.log.write(b)
	}
	if _, err := s.out.Write(b); err != nil {
		return fmt.Errorf("writing to the terminal: %w", err)
	}
	return nil
}

// note prints "rmm: <msg>" on a line of its own, on stderr.
func (s *screen) note(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	s.mu.Lock()
	defer s.mu.Unlock()
	eol := "\n"
	if s.guard != nil && s.guard.raw() {
		eol = "\r\n"
		msg = string(bytes.ReplaceAll([]byte(msg), []byte("\n"), []byte("\r\n")))
	}
	var b bytes.Buffer
	if s.midLine {
		b.WriteString(eol)
		s.midLine = false
	}
	b.WriteString("rmm: ")
	b.WriteString(msg)
	b.WriteString(eol)
	_, _ = s.errOut.Write(b.Bytes())
	if s.log != nil {
		s.log.note(msg)
	}
}

// stampedLog is --log FILE: everything the console shows, each line
// prefixed with the local time it began, plus rmm's own notes as lines
// starting with "#". Keystrokes are not logged: passwords typed at a
// prompt do not echo, and the log should not undo that.
type stampedLog struct {
	f    *os.File
	w    io.Writer // f through the secret scrubber
	sc   *secret.Scrubber
	now  func() time.Time
	bol  bool
	err  error
	path string
}

const logStamp = "2006-01-02T15:04:05.000Z07:00"

func openStampedLog(path string, s *IOStreams, now func() time.Time) (*stampedLog, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("--log: %w", err)
	}
	l := &stampedLog{f: f, w: f, now: now, bol: true, path: path}
	if s.Scrub != nil {
		l.sc = s.Scrub.Wrap(f)
		l.w = l.sc
	}
	return l, nil
}

// write logs host output. A log that cannot be written is reported once
// (at close) and does not end the console: on-call needs the console more
// than the log.
func (l *stampedLog) write(p []byte) {
	if l.err != nil {
		return
	}
	var b []byte
	for len(p) > 0 {
		if l.bol {
			b = append(b, l.now().Format(logStamp)...)
			b = append(b, ' ')
			l.bol = false
		}
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			b = append(b, p...)
			break
		}
		b = append(b, p[:i+1]...)
		p = p[i+1:]
		l.bol = true
	}
	if _, err := l.w.Write(b); err != nil {
		l.err = err
	}
}

func (l *stampedLog) note(msg string) {
	if l.err != nil {
		return
	}
	var b []byte
	if !l.bol {
		b = append(b, '\n')
	}
	stamp := l.now().Format(logStamp)
	for _, line := range strings.Split(strings.ReplaceAll(msg, "\r\n", "\n"), "\n") {
		b = append(b, stamp...)
		b = append(b, " # rmm: "...)
		b = append(b, line...)
		b = append(b, '\n')
	}
	l.bol = true
	if _, err := l.w.Write(b); err != nil {
		l.err = err
	}
}

func (l *stampedLog) close() error {
	if l.sc != nil {
		if err := l.sc.Flush(); err != nil && l.err == nil {
			l.err = err
		}
	}
	if err := l.f.Close(); err != nil && l.err == nil {
		l.err = err
	}
	if l.err != nil {
		return fmt.Errorf("--log %s: %w", l.path, l.err)
	}
	return nil
}
