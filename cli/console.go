package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/rmm-project/rmm/bmc"
	"github.com/rmm-project/rmm/inventory"
	"github.com/rmm-project/rmm/secret"
)

func init() { register(newConsoleCmd) }

// consoleOptions holds rmm console's flags and dependencies.
type consoleOptions struct {
	env *Env
	g   *globalOptions
	fleetOptions

	selector  []string
	escape    string
	logFile   string
	force     bool
	capture   time.Duration
	until     string
	outDir    string
	reconnect int

	esc     byte
	untilRE *regexp.Regexp
}

// defaultUntilBound bounds --until when --capture is not given.
const defaultUntilBound = time.Minute

// untilWindow is how much recent output --until is matched against.
const untilWindow = 8 << 10

func newConsoleCmd(env *Env, g *globalOptions) *cobra.Command {
	o := &consoleOptions{env: env, g: g}
	cmd := &cobra.Command{
		Use:   "console HOST | SELECTOR --capture DURATION",
		Short: "Serial console (IPMI Serial-over-LAN): interactive, or captured for scripts",
		Long: `Attach to a host's serial console through its BMC's IPMI Serial-over-LAN,
spoken natively by rmm (no ipmitool process), to read a kernel panic, log
in, or watch a boot.

Interactive (one host): the terminal goes raw, so every key, Ctrl-C and
Ctrl-Z included, goes to the host. rmm's own commands start with the
escape character, at the start of a line (after Enter), like ssh's ~ but
with & so that an rmm console inside ssh never collides with ssh:

  &.  quit         &B  send a serial break (then a key: Linux magic SysRq)
  &?  help         &&  send a single &

-e changes the escape character (-e '~', -e '^]'). The terminal is
restored however the console ends: &., the BMC dropping the session,
SIGINT/SIGTERM/SIGHUP (an ssh drop closes the SOL session too), or an
error. When stdin is not a terminal, keys are read from it as typed, and
its end quits.

When the session drops (the BMC stops answering), rmm says so and
reconnects, up to --reconnect times (default 3, waiting 1s, 2s, 4s ...;
&. stops it), then exits 1. When another session takes the console over,
rmm says so and exits without taking it back.

A console already in use by another session is not taken over silently:
rmm says who holds it and exits; --force deactivates the other session's
console and takes it, saying whose it was.

Hosts reached over Redfish: rmm lists the console transports the BMC
advertises (IPMI SOL, SSH and the command that enters its console) and
uses IPMI SOL, in a separate IPMI session with the same credentials, when
the BMC offers it. (Protocols are tried in the inventory's order; a host
whose BMC does not advertise SOL over Redfish but speaks IPMI should list
ipmi first.)

--log FILE appends everything the console shows to FILE (mode 0600), each
line prefixed with its local time, with rmm's notes on lines marked "#".
Keystrokes are not logged.

Capture (scripts and postmortems): --capture DURATION prints what the
console shows for that long and exits 0; --until REGEXP stops as soon as
the output (its last 8 KiB) matches, bounded by --capture (default 1m)
and exits 1 with a message if it never matched. A selector of several
hosts captures them in parallel, one file each: --out-dir DIR writes
DIR/HOST.log (required with more than one host). A session that fails
exits 1 with its error.`,
		Example: `  rmm console db1
  rmm console db1 --log /var/tmp/db1-console.log
  rmm console db1 --force
  rmm console db1 --capture 30s > db1-panic.txt
  rmm console db1 --capture 5m --until 'login: '
  rmm console @db --capture 20s --out-dir /var/tmp/consoles`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usageErrorf("rmm console needs a host, e.g. 'rmm console db1'\nrun 'rmm console --help' for usage")
			}
			return nil
		},
		ValidArgsFunction: completeSelector(env, g),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.selector = args
			return consoleRun(cmd.Context(), o)
		},
	}
	o.fleetOptions.bind(cmd)
	cmd.Flags().StringVarP(&o.escape, "escape", "e", "&", "escape character for the console's commands (&. quit, &? help); ^X for a control key")
	cmd.Flags().StringVar(&o.logFile, "log", "", "append everything the console shows to this file, time-stamped per line")
	cmd.Flags().BoolVar(&o.force, "force", false, "take the console over from another session that holds it (it is disconnected)")
	cmd.Flags().DurationVar(&o.capture, "capture", 0, "capture mode: print what the console shows for this long, then exit")
	cmd.Flags().StringVar(&o.until, "until", "", "capture mode: stop when the output matches this regular expression (bounded by --capture, default 1m)")
	cmd.Flags().StringVar(&o.outDir, "out-dir", "", "capture mode: write each host's console to DIR/HOST.log (required for several hosts)")
	cmd.Flags().IntVar(&o.reconnect, "reconnect", 3, "interactive: how many times to reconnect after the session drops (0: exit at once)")
	return cmd
}

func consoleRun(ctx context.Context, o *consoleOptions) error {
	if err := o.fleetOptions.check(); err != nil {
		return err
	}
	esc, err := parseEscape(o.escape)
	if err != nil {
		return err
	}
	o.esc = esc
	if o.capture < 0 {
		return usageErrorf("--capture must be positive, got %s", o.capture)
	}
	if o.reconnect < 0 {
		return usageErrorf("--reconnect must be 0 or more, got %d", o.reconnect)
	}
	if o.until != "" {
		re, err := regexp.Compile(o.until)
		if err != nil {
			return usageErrorf("--until %q is not a regular expression: %v", o.until, err)
		}
		o.untilRE = re
		if o.capture == 0 {
			o.capture = defaultUntilBound
		}
	}
	capture := o.capture > 0
	if !capture && o.outDir != "" {
		return usageErrorf("--out-dir is for capture mode: add --capture DURATION")
	}
	inv, err := loadInventory(o.env, o.g)
	if err != nil {
		return err
	}
	hosts, err := selectHosts(inv, o.selector)
	if err != nil {
		return err
	}
	if len(hosts) == 0 {
		return usageErrorf("%s selects no host", strings.Join(o.selector, " "))
	}
	if !capture && len(hosts) != 1 {
		return usageErrorf("an interactive console is for one host, and %s selects %d\nhint: to record several consoles, use --capture DURATION --out-dir DIR", strings.Join(o.selector, " "), len(hosts))
	}
	if capture && len(hosts) > 1 && o.outDir == "" {
		return usageErrorf("capturing %d consoles needs --out-dir DIR (one file per host, DIR/HOST.log)", len(hosts))
	}
	if o.logFile != "" && len(hosts) > 1 {
		return usageErrorf("--log is for one host; with several, --out-dir writes one file per host")
	}
	f, err := newFleet(o.env, inv)
	if err != nil {
		return err
	}
	if capture {
		return consoleCapture(ctx, o, f, hosts)
	}
	return consoleInteractive(ctx, o, f, hosts[0])
}

// liveConsole is an open SOL console and the session(s) it needs.
type liveConsole struct {
	con   bmc.Console
	conns []*bmc.Conn // closed after the console
	via   string      // "IPMI SOL on 10.0.5.11:623"
}

// close ends the console and every session it used, each with its own
// short deadline, so it works after Ctrl-C and on a dead BMC (bounded).
func (l *liveConsole) close(ctx context.Context) {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*bmc.CloseTimeout)
	defer cancel()
	_ = l.con.Close(cctx)
	for _, c := range l.conns {
		_ = c.Close(cctx)
	}
}

// openConsole opens a session to h and a SOL console on it, within the
// per-host --timeout. Over Redfish it first says which console
// transports the BMC advertises. With force, a console held by another
// session is taken over, and the note names the holder.
func openConsole(ctx context.Context, o *consoleOptions, f *fleet, h *inventory.Host, note func(string, ...any)) (*liveConsole, error) {
	octx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	conn, err := f.open(octx, h)
	if err != nil {
		return nil, err
	}
	lc := &liveConsole{conns: []*bmc.Conn{conn}}
	fail := func(err error) (*liveConsole, error) {
		for _, c := range lc.conns {
			_ = c.Close(ctx)
		}
		return nil, err
	}
	overRedfish := conn.Protocol() != bmc.ProtocolIPMI && conn.Protocol() != bmc.ProtocolIPMItool
	var sol *bmc.ConsoleTransport
	if overRedfish {
		info, ierr := conn.ConsoleInfo(octx)
		switch {
		case ierr != nil:
			note("%s: could not read the console transports the BMC advertises: %v", h.Name, ierr)
		case len(info.Transports) == 0:
			note("%s: the BMC (over %s) advertises no console transport", h.Name, conn.Protocol())
		default:
			note("%s: the BMC (over %s) advertises: %s", h.Name, conn.Protocol(), describeConsoleTransports(info))
			for i, tr := range info.Transports {
				if tr.Kind == "ipmi-sol" && tr.Enabled {
					sol = &info.Transports[i]
					break
				}
			}
		}
	}
	activate := func(c *bmc.Conn) (bmc.Console, error) {
		con, err := c.Console(octx, bmc.ConsoleOptions{})
		if err == nil || !o.force || !errors.Is(err, bmc.ErrBusy) {
			return con, err
		}
		// Asking without force first is what lets the note say whose
		// console is taken: the busy error names the holder.
		note("%s: --force: taking the console over; the other session loses it (%v)", h.Name, errors.Unwrap(err))
		return c.Console(octx, bmc.ConsoleOptions{Force: true})
	}
	ipmiAddr := bmc.Target{Addr: h.Addr, IPMIPort: h.IPMIPort}.IPMIAddr()
	con, err := activate(conn)
	if err != nil {
		return fail(err)
	}
	lc.con = con
	lc.via = "IPMI SOL on " + ipmiAddr.String()
	if sol != nil && sol.Port > 0 && sol.Port < 65536 {
		lc.via = fmt.Sprintf("IPMI SOL on %s:%d", h.Addr, sol.Port)
	}
	if overRedfish && sol != nil {
		note("%s: using %s (a separate IPMI session with the same credentials)", h.Name, lc.via)
		// The Redfish session has done its part; holding it for a console
		// that may stay open for hours would only use up a BMC slot.
		_ = conn.Close(ctx)
		lc.conns = slices.DeleteFunc(lc.conns, func(c *bmc.Conn) bool { return c == conn })
	}
	return lc, nil
}

// describeConsoleTransports is one line: "IPMI SOL (enabled, port 623);
// SSH (enabled, port 22, then type "cd system1/sol1; start")".
func describeConsoleTransports(info bmc.ConsoleInfo) string {
	var parts []string
	for _, tr := range info.Transports {
		name := map[string]string{"ipmi-sol": "IPMI SOL", "ssh": "SSH", "telnet": "Telnet"}[tr.Kind]
		if name == "" {
			name = tr.Kind
		}
		state := "disabled"
		if tr.Enabled {
			state = "enabled"
		}
		d := name + " (" + state
		if tr.Port > 0 {
			d += fmt.Sprintf(", port %d", tr.Port)
		}
		if tr.EntryCommand != "" {
			d += fmt.Sprintf(", then type %q", tr.EntryCommand)
		}
		// Where it was advertised matters: a manager's CommandShell
		// listing IPMI is a weaker promise than a system's SerialConsole.
		if _, frag, ok := strings.Cut(tr.Where, "#"); ok && frag != "" {
			d += "; from " + frag
		}
		parts = append(parts, d+")")
	}
	return strings.Join(parts, "; ")
}

// consoleOut is where the interactive byte stream goes: straight to the
// process's stdout, not through IOStreams.Out. Out is wrapped in the
// secret scrubber, which holds back any tail of a write that could begin a
// password until the next write decides; on a console that tail can be the
// echo of the key just typed (or a prompt), which would then appear one
// keystroke late, or never while the host is quiet. The host's serial
// output carries no BMC secret (rmm never sends the BMC password to the
// host), so the stream goes out unscrubbed and unbuffered. Tests, whose
// Out is a plain buffer, get Out itself.
func consoleOut(s *IOStreams) io.Writer {
	if sc, ok := s.Out.(*secret.Scrubber); ok {
		_ = sc.Flush() // anything rmm printed before comes first
		return os.Stdout
	}
	return s.Out
}

// sessionEnd says why one console session ended.
type sessionEnd int

const (
	endQuit        sessionEnd = iota // &. or the end of stdin
	endInterrupted                   // SIGINT/SIGTERM/SIGHUP
	endDropped                       // the BMC stopped answering: reconnect
	endTakenOver                     // another session took the console
	endTerminal                      // the local terminal failed
	endHangup                        // the local terminal hung up: like SIGHUP
)

// consoleInteractive runs one interactive console, reconnecting after
// drops.
func consoleInteractive(ctx context.Context, o *consoleOptions, f *fleet, h *inventory.Host) (err error) {
	s := o.env.IO
	guard := newTermGuard(s)
	// A panic anywhere below must not leave the terminal raw.
	defer guard.restore()
	scr := &screen{out: consoleOut(s), errOut: s.ErrOut, guard: guard, host: h.Name}
	if o.logFile != "" {
		lg, err := openStampedLog(o.logFile, s, o.env.now)
		if err != nil {
			return usageErrorf("%v", err)
		}
		scr.log = lg
		defer func() {
			if cerr := lg.close(); cerr != nil {
				fmt.Fprintf(s.ErrOut, "rmm: %v\n", cerr)
			}
		}()
	}
	target := bmc.Target{Name: h.Name, Addr: h.Addr}

	// Connect before the terminal goes raw: Ctrl-C still interrupts a
	// slow connect, and errors print normally.
	lc, err := openConsole(ctx, o, f, h, scr.note)
	if err != nil {
		return err
	}
	esc := string(o.esc)
	if o.esc < 0x20 {
		esc = "^" + string(o.esc^0x40)
	}
	scr.note("connected to %s (bmc %s) via %s; type %s. at the start of a line to quit, %s? for help", h.Name, h.Addr, lc.via, esc, esc)
	if err := guard.makeRaw(); err != nil {
		lc.close(ctx)
		return err
	}
	kb := startKeyboard(s, o.esc, guard)
	defer kb.close(s.InFd >= 0 || isFile(s.In))

	tries := 0
	for {
		started := time.Now()
		end, cause := serveConsole(ctx, lc, kb, scr, guard, o.esc) // closes lc
		switch end {
		case endQuit:
			guard.restore()
			scr.note("console to %s closed", h.Name)
			return nil
		case endInterrupted:
			guard.restore()
			scr.note("interrupted: console to %s closed", h.Name)
			return silentExit(ExitInterrupted)
		case endHangup:
			// Whether SIGHUP or the dead terminal is noticed first, the
			// outcome is the same: session closed, exit as on a signal.
			guard.restore()
			scr.note("the terminal hung up: console to %s closed", h.Name)
			return silentExit(ExitInterrupted)
		case endTerminal:
			guard.restore()
			return target.Wrap("console", cause)
		case endTakenOver:
			guard.restore()
			return target.Wrap("console", bmc.Hinted(cause, "another session (perhaps 'rmm console --force' elsewhere) took the console over; rmm does not take it back by itself"))
		}
		// Dropped: reconnect, bounded. A session that lived a while
		// earns a fresh set of attempts; a flapping one does not.
		if time.Since(started) >= time.Minute {
			tries = 0
		}
		scr.note("console to %s lost: %v", h.Name, cause)
		var next *liveConsole
		for next == nil {
			if tries >= o.reconnect {
				guard.restore()
				return fmt.Errorf("%w (gave up after %d reconnect attempts)", target.Wrap("console lost", cause), o.reconnect)
			}
			tries++
			wait := min(time.Second<<(tries-1), 8*time.Second)
			scr.note("reconnecting in %s (attempt %d of %d); %s. to give up", wait, tries, o.reconnect, esc)
			switch waitOrKey(ctx, kb, wait, scr, o.esc) {
			case endInterrupted, endHangup:
				guard.restore()
				scr.note("interrupted: console to %s closed", h.Name)
				return silentExit(ExitInterrupted)
			case endQuit:
				guard.restore()
				return fmt.Errorf("%w (you stopped reconnecting)", target.Wrap("console lost", cause))
			}
			n, err := openConsole(ctx, o, f, h, scr.note)
			if err != nil {
				if ctx.Err() != nil {
					guard.restore()
					scr.note("interrupted: console to %s closed", h.Name)
					return silentExit(ExitInterrupted)
				}
				scr.note("reconnect attempt %d of %d failed: %v", tries, o.reconnect, err)
				if errors.Is(err, bmc.ErrBusy) && !o.force {
					scr.note("the console may still be held by this rmm's lost session until the BMC times it out; rerun with --force to take it over")
				}
				continue
			}
			next = n
		}
		lc = next
		scr.note("reconnected to %s via %s", h.Name, lc.via)
	}
}

func isFile(r io.Reader) bool { _, ok := r.(*os.File); return ok }

// waitOrKey waits d between reconnect attempts, answering the keyboard
// meanwhile: quit and help work, keystrokes are dropped (there is no host
// to send them to).
func waitOrKey(ctx context.Context, kb *keyboard, d time.Duration, scr *screen, esc byte) sessionEnd {
	t := time.NewTimer(d)
	defer t.Stop()
	dropped := false
	for {
		select {
		case <-ctx.Done():
			return endInterrupted
		case <-t.C:
			return endDropped
		case ev := <-kb.events:
			switch ev.kind {
			case keyEOF:
				if errors.Is(ev.err, errHangup) {
					return endHangup
				}
				return endQuit
			case keyQuit:
				return endQuit
			case keyHelp:
				scr.note("%s", strings.TrimSuffix(escapeHelp(esc), "\n"))
			default:
				if !dropped {
					scr.note("not connected: keys typed now are dropped")
					dropped = true
				}
			}
		}
	}
}

// keyQueue is how many keyboard events may wait for the BMC to accept
// earlier ones (it acknowledges one packet at a time).
const keyQueue = 64

// quitDrain bounds how long keystrokes typed before &. may take to reach
// the host before the console is closed anyway.
const quitDrain = 3 * time.Second

// serveConsole runs one SOL session: host output to the screen,
// keystrokes to the host in order, until quit, a signal, or a failure.
// It returns with both of its goroutines stopped once the console is
// closed (the caller closes it).
func serveConsole(ctx context.Context, lc *liveConsole, kb *keyboard, scr *screen, guard *termGuard, esc byte) (sessionEnd, error) {
	con := lc.con
	var wg sync.WaitGroup
	readErr := make(chan error, 1)
	wg.Add(1)
	go func() { // host output, as it comes
		defer wg.Done()
		defer guard.onPanic()
		buf := make([]byte, 4096)
		for {
			n, err := con.Read(buf)
			if n > 0 {
				if werr := scr.write(buf[:n]); werr != nil {
					readErr <- terminalError{werr}
					return
				}
			}
			if err != nil {
				readErr <- err
				return
			}
		}
	}()
	sendq := make(chan keyEvent, keyQueue)
	writeErr := make(chan error, 1)
	writerDone := make(chan struct{})
	go func() { // keystrokes and breaks, one BMC acknowledgement at a time
		defer close(writerDone)
		defer guard.onPanic()
		for ev := range sendq {
			var err error
			if ev.kind == keyBreak {
				bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
				err = con.SendBreak(bctx)
				cancel()
			} else {
				_, err = con.Write(ev.data)
			}
			if err != nil {
				writeErr <- err
				for range sendq { // unblock the sender until it notices
				}
				return
			}
		}
	}()

	finish := func(end sessionEnd, cause error, drain bool) (sessionEnd, error) {
		close(sendq)
		if drain {
			select {
			case <-writerDone:
			case <-time.After(quitDrain):
			case <-ctx.Done():
			}
		}
		lc.close(ctx) // ends a blocked Write and Read
		<-writerDone
		// The reader ends with the console, unless it is stuck writing to
		// a terminal that stopped reading; the BMC session is closed
		// already, so do not hang on it.
		readerDone := make(chan struct{})
		go func() { wg.Wait(); close(readerDone) }()
		select {
		case <-readerDone:
		case <-time.After(5 * time.Second):
		}
		return end, cause
	}
	classify := func(err error) (sessionEnd, error) {
		var te terminalError
		switch {
		case errors.As(err, &te):
			return endTerminal, te.err
		case ctx.Err() != nil:
			return endInterrupted, nil
		case errors.Is(err, bmc.ErrBusy):
			return endTakenOver, err
		case errors.Is(err, io.EOF):
			return endDropped, fmt.Errorf("%w: the console ended unexpectedly", bmc.ErrProtocol)
		}
		return endDropped, err
	}
	enqueue := func(ev keyEvent) (bool, sessionEnd, error) {
		select {
		case sendq <- ev:
			return true, 0, nil
		case <-ctx.Done():
			return false, endInterrupted, nil
		case err := <-readErr:
			e, c := classify(err)
			return false, e, c
		case err := <-writeErr:
			e, c := classify(err)
			return false, e, c
		}
	}
	for {
		select {
		case <-ctx.Done():
			return finish(endInterrupted, nil, false)
		case err := <-readErr:
			e, c := classify(err)
			return finish(e, c, false)
		case err := <-writeErr:
			e, c := classify(err)
			return finish(e, c, false)
		case ev := <-kb.events:
			switch ev.kind {
			case keyQuit:
				return finish(endQuit, nil, true)
			case keyEOF:
				switch {
				case errors.Is(ev.err, errHangup):
					return finish(endHangup, ev.err, false)
				case ev.err != nil:
					return finish(endTerminal, ev.err, true)
				}
				return finish(endQuit, nil, true)
			case keyHelp:
				scr.note("%s", strings.TrimSuffix(escapeHelp(esc), "\n"))
			case keyData, keyBreak:
				if ok, e, c := enqueue(ev); !ok {
					return finish(e, c, false)
				}
			}
		}
	}
}

// terminalError marks a failure to write to the local terminal.
type terminalError struct{ err error }

func (e terminalError) Error() string { return e.err.Error() }

// captureResult is one host's capture.
type captureResult struct {
	host    string
	bytes   int64
	matched bool
	file    string
}

// consoleCapture records the console of each host for --capture, in
// parallel, to stdout (one host) or DIR/HOST.log.
func consoleCapture(ctx context.Context, o *consoleOptions, f *fleet, hosts []*inventory.Host) error {
	s := o.env.IO
	if o.outDir != "" {
		if err := os.MkdirAll(o.outDir, 0o700); err != nil {
			return fmt.Errorf("--out-dir: %w", err)
		}
	}
	// The fan-out's per-host deadline covers connecting (--timeout), the
	// capture itself, and closing.
	fo := o.fleetOptions
	fo.timeout = o.timeout + o.capture + 2*bmc.CloseTimeout
	// Hosts report on stderr from their own goroutines.
	errOut := &lockedWriter{w: s.ErrOut}
	rs := runFleet(ctx, o.env, hosts, fo, "console capture", func(ctx context.Context, h *inventory.Host) (captureResult, error) {
		r := captureResult{host: h.Name}
		var w io.Writer
		var closeOut func() error
		if o.outDir != "" {
			name, err := captureFileName(h.Name)
			if err != nil {
				return r, err
			}
			r.file = filepath.Join(o.outDir, name)
			fh, err := os.OpenFile(r.file, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
			if err != nil {
				return r, fmt.Errorf("%s: %w", h.Name, err)
			}
			w = fh
			closeOut = fh.Close
			if s.Scrub != nil {
				sc := s.Scrub.Wrap(fh)
				w = sc
				closeOut = func() error { _ = sc.Flush(); return fh.Close() }
			}
		} else {
			// One host: stdout, through the scrubber like any data rmm
			// prints (nobody types here, so its hold-back costs nothing;
			// Main flushes it at exit).
			w = s.Out
		}
		scr := &screen{out: w, errOut: errOut, host: h.Name}
		if o.logFile != "" {
			lg, err := openStampedLog(o.logFile, s, o.env.now)
			if err != nil {
				return r, err
			}
			scr.log = lg
			defer func() {
				if cerr := lg.close(); cerr != nil {
					fmt.Fprintf(errOut, "rmm: %v\n", cerr)
				}
			}()
		}
		err := captureOne(ctx, o, f, h, scr, &r)
		if closeOut != nil {
			if cerr := closeOut(); cerr != nil && err == nil {
				err = fmt.Errorf("%s: %s: %w", h.Name, r.file, cerr)
			}
		}
		if err == nil && r.file != "" {
			how := "for " + o.capture.String()
			if r.matched {
				how = "until --until matched"
			}
			fmt.Fprintf(errOut, "%s: %d bytes %s -> %s\n", h.Name, r.bytes, how, r.file)
		}
		return r, err
	})
	failed := 0
	for _, r := range rs {
		if r.Err != nil {
			failed++
		}
	}
	reportErrors(o.env, rs)
	if ctx.Err() != nil {
		fmt.Fprintf(s.ErrOut, "rmm: interrupted: consoles closed\n")
		return silentExit(ExitInterrupted)
	}
	if len(hosts) == 1 {
		if failed > 0 {
			return silentExit(ExitFailed)
		}
		return nil
	}
	return silentExit(summarize(o.env, len(rs), failed, "console capture"))
}

// lockedWriter serialises writes from several goroutines, one Write
// call (one line) at a time.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// captureFileName is HOST.log, refusing names that are not one path
// element (inventory names are host names, but a file name is a file name).
func captureFileName(host string) (string, error) {
	if host == "" || host == "." || host == ".." || strings.ContainsAny(host, `/\`) || strings.ContainsRune(host, 0) {
		return "", fmt.Errorf("%s: cannot be a file name under --out-dir", host)
	}
	return host + ".log", nil
}

// captureOne opens h's console, writes what it shows to scr until the
// capture time passed or --until matched, and closes it.
func captureOne(ctx context.Context, o *consoleOptions, f *fleet, h *inventory.Host, scr *screen, r *captureResult) error {
	lc, err := openConsole(ctx, o, f, h, scr.note)
	if err != nil {
		return err
	}
	target := bmc.Target{Name: h.Name, Addr: h.Addr}
	matched := make(chan struct{})
	readErr := make(chan error, 1)
	var wrote int64
	var mu sync.Mutex
	stopped := false
	go func() {
		buf := make([]byte, 4096)
		var win []byte
		for {
			n, err := lc.con.Read(buf)
			if n > 0 {
				mu.Lock()
				if !stopped {
					if werr := scr.write(buf[:n]); werr != nil {
						mu.Unlock()
						readErr <- werr
						return
					}
					wrote += int64(n)
					if o.untilRE != nil {
						win = append(win, buf[:n]...)
						if len(win) > untilWindow {
							win = append(win[:0], win[len(win)-untilWindow:]...)
						}
						if o.untilRE.Match(win) {
							stopped = true // what follows the match is not part of the capture
							close(matched)
						}
					}
				}
				mu.Unlock()
			}
			if err != nil {
				readErr <- err
				return
			}
		}
	}()
	t := time.NewTimer(o.capture)
	defer t.Stop()
	var result error
	readerDone := false
	select {
	case <-matched:
		r.matched = true
	case <-t.C:
		if o.untilRE != nil {
			result = target.Wrap("console capture", fmt.Errorf("--until %q did not match within %s", o.until, o.capture))
		}
	case <-ctx.Done():
		result = target.Wrap("console capture", ctx.Err())
	case err := <-readErr:
		readerDone = true
		result = target.Wrap("console capture: the session failed", err)
	}
	mu.Lock()
	stopped = true
	mu.Unlock()
	lc.close(ctx)
	if !readerDone {
		<-readErr // the reader ends once the console is closed
	}
	mu.Lock()
	r.bytes = wrote
	mu.Unlock()
	return result
}
