package rmcp

// window tracks the session sequence numbers of packets accepted from the
// BMC, to refuse replays and packets from long ago (IPMI v2.0 §6.12.13).
//
// Behind the highest number seen it accepts up to 16 positions, each once
// (a bitmap), which is the spec's window and covers UDP reordering. Ahead it
// accepts up to aheadLimit positions, more than the spec's 15: the BMC sends
// SOL data unasked, and a console that misses a burst of its retransmissions
// would otherwise refuse every later packet and lose the session. Only
// packets that passed the integrity check move the window, so the wider
// forward range does not let anyone inject anything.
type window struct {
	top  uint32 // highest accepted sequence number; 0 = none yet
	seen uint32 // bit i set: top-i was accepted
}

const (
	behindLimit = 16
	aheadLimit  = 1024
)

// check reports whether seq would be accepted, without recording it.
func (w *window) check(seq uint32) bool {
	if seq == 0 {
		return false // 0 is only ever used outside a session
	}
	if w.top == 0 {
		return true
	}
	d := int64(seq) - int64(w.top)
	switch {
	case d > 0:
		return d <= aheadLimit
	case -d >= behindLimit:
		return false
	default:
		return w.seen&(1<<uint(-d)) == 0
	}
}

// accept records seq; call it only after check and the integrity check.
func (w *window) accept(seq uint32) {
	if w.top == 0 {
		w.top, w.seen = seq, 1
		return
	}
	d := int64(seq) - int64(w.top)
	if d > 0 {
		if d >= 32 {
			w.seen = 0
		} else {
			w.seen <<= uint(d)
		}
		w.seen |= 1
		w.top = seq
		return
	}
	w.seen |= 1 << uint(-d)
}
