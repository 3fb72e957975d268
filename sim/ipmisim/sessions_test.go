package ipmisim

import (
	"context"
	"encoding/binary"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bougou/go-ipmi/pkg/client"
	"github.com/bougou/go-ipmi/pkg/command/transport"
	"github.com/bougou/go-ipmi/pkg/types"
)

// rawExchange sends one UDP packet to the BMC from a fresh socket and
// returns the answer, or nil when none came within wait.
func rawExchange(t testing.TB, to netip.AddrPort, pkt []byte, wait time.Duration) []byte {
	t.Helper()
	conn, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(to))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write(pkt); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(wait))
	buf := make([]byte, 1024)
	n, err := conn.Read(buf)
	if err != nil {
		return nil
	}
	return buf[:n]
}

// presencePing is an RMCP/ASF presence ping.
var presencePing = []byte{0x06, 0x00, 0xff, 0x06, 0x00, 0x00, 0x11, 0xbe, 0x80, 0x01, 0x00, 0x00}

// openSessionRequest is an RMCP+ Open Session Request for cipher suite 3.
func openSessionRequest(console uint32) []byte {
	p := []byte{0x01, 0x04, 0, 0, 0, 0, 0, 0,
		0x00, 0, 0, 0x08, 0x01, 0, 0, 0, // RAKP-HMAC-SHA1
		0x01, 0, 0, 0x08, 0x01, 0, 0, 0, // HMAC-SHA1-96
		0x02, 0, 0, 0x08, 0x01, 0, 0, 0} // AES-CBC-128
	binary.LittleEndian.PutUint32(p[4:], console)
	hdr := []byte{0x06, 0x00, 0xff, 0x07, 0x06, payloadOpenSessionRequest, 0, 0, 0, 0, 0, 0, 0, 0, byte(len(p)), 0}
	return append(hdr, p...)
}

func TestSessionCounters(t *testing.T) {
	b := startBMC(t, nil)
	const n = 3
	var clients []*client.Client
	for range n {
		clients = append(clients, dial(t, b, types.CipherSuiteID17))
	}
	st := b.Stats()
	if st.SessionsOpen != n || st.SessionsOpened != n || st.SessionsHalfOpen != 0 || st.SessionsClosed != 0 {
		t.Fatalf("with %d clients: %+v", n, st)
	}
	for _, c := range clients {
		closeClient(t, c)
	}
	st = b.Stats()
	if st.SessionsOpen != 0 || st.SessionsClosed != n || st.SessionsExpired != 0 || st.SessionsHalfOpen != 0 {
		t.Fatalf("after closing: %+v", st)
	}
	if st.Commands[CmdCloseSession] != n {
		t.Fatalf("close session count %d", st.Commands[CmdCloseSession])
	}

	// A handshake that stops after Open Session holds a slot, half open.
	resp := rawExchange(t, b.Addr(), openSessionRequest(0xc0ffee01), 2*time.Second)
	if len(resp) < 18 || resp[5]&0x3f != payloadOpenSessionResponse || resp[17] != 0 {
		t.Fatalf("open session response %x", resp)
	}
	st = b.Stats()
	if st.SessionsHalfOpen != 1 || st.SessionsOpen != 0 {
		t.Fatalf("half-open handshake: %+v", st)
	}
}

// rakp3Abandon is a RAKP Message 3 with an error status for BMC session
// id: a console giving up on a handshake.
func rakp3Abandon(id uint32, status byte) []byte {
	p := []byte{0x07, status, 0, 0, 0, 0, 0, 0}
	binary.LittleEndian.PutUint32(p[4:], id)
	hdr := []byte{0x06, 0x00, 0xff, 0x07, 0x06, payloadRAKP3, 0, 0, 0, 0, 0, 0, 0, 0, byte(len(p)), 0}
	return append(hdr, p...)
}

// TestAbandonedHandshakes: a console that frees a handshake with a RAKP 3
// error status (rmm does when its deadline passes, and for the sessions a
// retransmitted Open Session Request allocated) is neither an
// authentication failure nor, when the session was already active, an
// expiry.
func TestAbandonedHandshakes(t *testing.T) {
	b := startBMC(t, nil)
	resp := rawExchange(t, b.Addr(), openSessionRequest(0xc0ffee02), 2*time.Second)
	if len(resp) < 28 || resp[17] != 0 {
		t.Fatalf("open session response %x", resp)
	}
	if st := b.Stats(); st.SessionsHalfOpen != 1 {
		t.Fatalf("before abandoning: %+v", st)
	}
	id := binary.LittleEndian.Uint32(resp[24:28])
	if r := rawExchange(t, b.Addr(), rakp3Abandon(id, 0x01), 2*time.Second); len(r) < 18 || r[5]&0x3f != payloadRAKP4 || r[17] != 0x01 {
		t.Fatalf("rakp 4 %x", r)
	}
	if st := b.Stats(); st.SessionsHalfOpen != 0 || st.AuthFailures != 0 {
		t.Fatalf("after abandoning a half-open handshake: %+v", st)
	}

	c := dial(t, b, types.CipherSuiteID17)
	defer func() {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_ = c.Close(ctx) // the BMC has forgotten the session; only the socket is left
	}()
	b.sess.mu.Lock()
	var open uint32
	for k := range b.sess.open {
		open = k
	}
	b.sess.mu.Unlock()
	rawExchange(t, b.Addr(), rakp3Abandon(open, 0x01), 2*time.Second)
	if st := b.Stats(); st.SessionsOpen != 0 || st.SessionsClosed != 1 || st.SessionsExpired != 0 || st.AuthFailures != 0 {
		t.Fatalf("after abandoning an active session: %+v", st)
	}

	for _, tc := range []struct {
		status byte
		auth   bool
	}{{0x01, false}, {0x02, false}, {0x0d, true}, {0x0f, true}, {0x09, true}, {0x0a, true}, {0x11, false}} {
		if authStatus(tc.status) != tc.auth {
			t.Errorf("status %#02x: authentication failure %v, want %v", tc.status, !tc.auth, tc.auth)
		}
	}
}

func TestSessionExpiry(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for the BMC's inactivity eviction (about 5 s)")
	}
	t.Parallel()
	b := startBMC(t, func(c *Config) { c.SessionTimeout = time.Second })
	c := dial(t, b, types.CipherSuiteID3)
	// Leak the session: the BMC never hears Close Session.
	b.SetDead(true)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_ = c.Close(ctx)
	b.SetDead(false)
	if st := b.Stats(); st.SessionsOpen != 1 {
		t.Fatalf("leaked session not open: %+v", st)
	}
	// Eviction runs every 3 s and allows 3 s of tolerance past the timeout.
	eventually(t, "leaked session expires", 15*time.Second, func() bool { return b.Stats().SessionsOpen == 0 })
	if st := b.Stats(); st.SessionsExpired != 1 || st.SessionsClosed != 1 {
		t.Fatalf("after expiry: %+v", st)
	}
}

func TestWrongCredentials(t *testing.T) {
	b := startBMC(t, nil)
	for _, suite := range []types.CipherSuiteID{types.CipherSuiteID3, types.CipherSuiteID17} {
		c := newClient(t, b, "not-the-password", suite)
		err := c.Connect(ctxT(t, 20*time.Second))
		// go-ipmi's Connect drops the error chain: match the text.
		if err == nil || !strings.Contains(err.Error(), "RAKP2 authentication code mismatch") {
			t.Fatalf("suite %d: connect with a wrong password: %v", suite, err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_ = c.Close(ctx) // releases the socket go-ipmi's failed Connect keeps
	}
	st := b.Stats()
	if st.SessionsOpen != 0 || st.SessionsOpened != 0 {
		t.Fatalf("a wrong password opened a session: %+v", st)
	}
	// go-ipmi's client gives up after RAKP 2 without telling the BMC: the
	// handshakes stay half open until the inactivity timeout.
	if st.SessionsHalfOpen != 2 {
		t.Fatalf("half-open handshakes: %+v", st)
	}
	c := dial(t, b, types.CipherSuiteID3)
	closeClient(t, c)
}

// syncBuffer collects SOL output written from the stream's goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func activateSOL(ctx context.Context, c *client.Client) error {
	_, err := c.ActivatePayload(ctx, &transport.ActivatePayloadRequest{
		PayloadType: types.PayloadTypeSOL, PayloadInstance: 1, EnableEncryption: true, EnableAuthentication: true})
	return err
}

func deactivateSOL(ctx context.Context, c *client.Client) error {
	_, err := c.DeactivatePayload(ctx, &transport.DeactivatePayloadRequest{PayloadType: types.PayloadTypeSOL, PayloadInstance: 1})
	return err
}

// runSOL streams SOL on c until stop is called; out collects the console.
func runSOL(t *testing.T, c *client.Client) (in io.Writer, out *syncBuffer, stop func()) {
	t.Helper()
	pr, pw := io.Pipe()
	out = &syncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- c.SOLStream(ctx, pr, out, &client.SOLStreamOptions{PollInterval: 20 * time.Millisecond})
	}()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			_ = pw.Close()
			select {
			case <-done:
			case <-time.After(5 * time.Second):
				t.Error("SOL stream did not stop")
			}
		})
	}
	t.Cleanup(stop)
	return pw, out, stop
}

func TestSOL(t *testing.T) {
	b := startBMC(t, nil)
	m := b.Machine()
	c := dial(t, b, types.CipherSuiteID17)
	defer closeClient(t, c)
	ctx := ctxT(t, 20*time.Second)
	if err := activateSOL(ctx, c); err != nil {
		t.Fatal(err)
	}
	if st := b.Stats(); st.SOLActive != 1 || st.SOLActivations != 1 {
		t.Fatalf("after activation: %+v", st)
	}
	in, out, stop := runSOL(t, c)

	m.Console().Feed("hello from the host\r\n")
	eventually(t, "console output reaches SOL", 5*time.Second, func() bool { return strings.Contains(out.String(), "hello from the host") })

	if _, err := in.Write([]byte("root\r")); err != nil {
		t.Fatal(err)
	}
	eventually(t, "keystrokes reach the console", 5*time.Second, func() bool { return m.Console().Typed() == "root\r" })
	eventually(t, "the host echoes", 5*time.Second, func() bool { return strings.Contains(out.String(), "root\r\n") })

	m.Panic()
	eventually(t, "a panic shows on SOL", 5*time.Second, func() bool { return strings.Contains(out.String(), "Kernel panic - not syncing") })

	stop()
	if err := deactivateSOL(ctx, c); err != nil {
		t.Fatal(err)
	}
	if st := b.Stats(); st.SOLActive != 0 {
		t.Fatalf("after deactivation: %+v", st)
	}
}

func TestSOLReplay(t *testing.T) {
	b := startBMC(t, func(c *Config) { c.SOLReplay = 4096 })
	b.Machine().Panic()
	c := dial(t, b, types.CipherSuiteID3)
	defer closeClient(t, c)
	ctx := ctxT(t, 20*time.Second)
	if err := activateSOL(ctx, c); err != nil {
		t.Fatal(err)
	}
	_, out, stop := runSOL(t, c)
	eventually(t, "history replayed", 5*time.Second, func() bool { return strings.Contains(out.String(), "end Kernel panic") })
	stop()
	if err := deactivateSOL(ctx, c); err != nil {
		t.Fatal(err)
	}
}

func TestSOLBusy(t *testing.T) {
	b := startBMC(t, func(c *Config) { c.SOLBusy = true })
	st := b.Stats()
	if st.PhantomSession == 0 || !st.SOLPhantom || st.SOLActive != 0 || st.SessionsOpen != 0 || st.SessionsHalfOpen != 0 {
		t.Fatalf("sol-busy at start: %+v", st)
	}
	c := dial(t, b, types.CipherSuiteID17)
	defer closeClient(t, c)
	ctx := ctxT(t, 20*time.Second)

	err := activateSOL(ctx, c)
	if cc, _ := completionCode(err); cc != types.CodeActivatePayloadAlreadyActive {
		t.Fatalf("activate on a busy SOL: %v", err)
	}
	// Raw, because go-ipmi's client adds one to the (1-based) capacity.
	as, err := raw(c, netFnApp, 0x4a, byte(types.PayloadTypeSOL))
	if err != nil {
		t.Fatal(err)
	}
	if len(as) < 2 || as[0] != 1 || as[1]&0x01 == 0 {
		t.Fatalf("activation status %x: want capacity 1, instance 1 active", as)
	}
	ii, err := c.GetPayloadInstanceInfo(ctx, types.PayloadTypeSOL, 1)
	if err != nil {
		t.Fatal(err)
	}
	if ii.SessionID != st.PhantomSession {
		t.Fatalf("instance held by %#x, phantom is %#x", ii.SessionID, st.PhantomSession)
	}
	// Who is it? Get Session Info by session ID.
	r, err := raw(c, netFnApp, 0x3d, append([]byte{0xff}, binary.LittleEndian.AppendUint32(nil, ii.SessionID)...)...)
	if err != nil {
		t.Fatal(err)
	}
	if len(r) < 14 || r[2] != 2 || r[3] != 3 || r[4] != 4 || netip.AddrFrom4([4]byte(r[6:10])) != PhantomAddr.Addr() {
		t.Fatalf("session info %x: want 2 active, user 3, administrator, from %s", r, PhantomAddr)
	}
	// Take it over, as "rmm console --force" does.
	if err := deactivateSOL(ctx, c); err != nil {
		t.Fatalf("force deactivate: %v", err)
	}
	if err := activateSOL(ctx, c); err != nil {
		t.Fatalf("activate after takeover: %v", err)
	}
	if st := b.Stats(); st.SOLPhantom || st.SOLActive != 1 {
		t.Fatalf("after takeover: %+v", st)
	}
	if err := deactivateSOL(ctx, c); err != nil {
		t.Fatal(err)
	}
}

func TestGetSessionInfoByIndex(t *testing.T) {
	b := startBMC(t, nil)
	c1 := dial(t, b, types.CipherSuiteID3)
	defer closeClient(t, c1)
	c2 := dial(t, b, types.CipherSuiteID3)
	defer closeClient(t, c2)
	seen := map[byte]bool{}
	for idx := byte(1); idx <= 3; idx++ {
		r, err := raw(c1, netFnApp, 0x3d, idx)
		if err != nil {
			t.Fatal(err)
		}
		if idx <= 2 {
			if len(r) < 6 || r[0] == 0 || r[2] != 2 || r[3] != 2 {
				t.Fatalf("session %d: %x", idx, r)
			}
			seen[r[0]] = true
		} else if len(r) != 3 || r[0] != 0 {
			t.Fatalf("index past the active sessions: %x", r)
		}
	}
	if len(seen) != 2 {
		t.Fatalf("handles %v", seen)
	}
}
