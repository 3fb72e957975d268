package rmcp

import (
	"encoding/hex"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"
)

func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

// Seeds: real packets captured from go-ipmi's BMC and ipmi_sim.
var packetSeeds = [][]byte{
	mustHex("0600ff070611000000000000000002000004"), // ipmi_sim's 2-byte Open Session refusal
	mustHex("0600ff07061100000000000000002400000004004433221102060000000000080100000001000008010000000200000801000000"),
	mustHex("0600ff0700000000000000000000108138c010c0010ef38000000002000000cd"), // v1.5 pre-session answer shape
	mustHex("0600ff06000011be40010010000011be000000008100000000000000"),         // ASF pong
	{0x06, 0x00, 0xff, 0x07, 0x06, 0xc0, 1, 2, 3, 4, 1, 0, 0, 0, 0x20, 0},
}

func FuzzParsePacket(f *testing.F) {
	for _, s := range packetSeeds {
		f.Add(s, 12)
		f.Add(s, 16)
	}
	f.Fuzz(func(t *testing.T, b []byte, macLen int) {
		p, err := parsePacket(b, macLen%32)
		if err != nil {
			return
		}
		if len(p.payload) > len(b) || len(p.authCode) > len(b) {
			t.Fatalf("slices longer than the packet")
		}
	})
}

// fuzzSession is an active session with fixed keys, the state accept and
// the SOL pump see after RAKP 4.
func fuzzSession(t testing.TB, suiteID int) *Session {
	suite, _ := LookupSuite(suiteID)
	k, err := deriveKeys(suite, make([]byte, 16), make([]byte, 16), 0x14, "admin", make([]byte, 20))
	if err != nil {
		t.Fatal(err)
	}
	return &Session{suite: suite, k: k, active: true, bmcID: 1, consoleID: 1, rbuf: make([]byte, maxPacket)}
}

// FuzzAccept feeds arbitrary bytes to a live session's inbound path:
// parse, integrity check, window, decryption. Seeds include packets the
// session itself sealed, so the fuzzer starts past the AuthCode check.
func FuzzAccept(f *testing.F) {
	for _, s := range packetSeeds {
		f.Add(s, 17)
	}
	for _, id := range []int{3, 17, 2, 1} {
		s := fuzzSession(f, id)
		for _, payload := range [][]byte{nil, []byte("x"), make([]byte, 15), make([]byte, 16), make([]byte, 200)} {
			pkt, err := s.seal(0, payload)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(append([]byte(nil), pkt...), id)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte, id int) {
		ids := []int{1, 2, 3, 15, 16, 17}
		s := fuzzSession(t, ids[(id%len(ids)+len(ids))%len(ids)])
		s.accept(b)
		s.accept(b) // a replay must be refused, and must not panic either
	})
}

func FuzzParsePong(f *testing.F) {
	for _, s := range packetSeeds {
		f.Add(s, uint8(0))
	}
	f.Fuzz(func(t *testing.T, b []byte, tag uint8) {
		_, _ = ParsePong(b, tag)
	})
}

func FuzzParseResponse(f *testing.F) {
	f.Add([]byte{0x81, 0x04, 0x7b, 0x20, 0x04, 0x01, 0x00, 0x01, 0x00, 0x00, 0xda}, true)
	f.Add([]byte{0x81, 0x1c, 0x63, 0x20, 0x04, 0x38, 0x00}, false)
	f.Fuzz(func(t *testing.T, b []byte, verify bool) {
		r, err := parseResponse(b, verify)
		if err == nil && len(r.data) > len(b) {
			t.Fatal("data longer than message")
		}
	})
}

// FuzzSOLPayload feeds arbitrary SOL payloads (after decryption) to the
// console pump, as a hostile or broken BMC could send them.
func FuzzSOLPayload(f *testing.F) {
	f.Add([]byte{0x01, 0x00, 0x00, 0x00, 'h', 'i'}, []byte{0x01, 0x00, 0x00, 0x00, 'h', 'i', '!'})
	f.Add([]byte{0x00, 0x02, 0x05, 0x40}, []byte{0x00, 0x02, 0x00, 0x00})
	f.Add([]byte{0x03, 0x01, 0xff, 0x10}, []byte{})
	f.Add([]byte{0x0f, 0x0f, 0x00, 0x00}, []byte{0x02, 0x02, 0x02, 0x02})
	hole, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.11.253:0")))
	if err != nil {
		f.Fatal(err)
	}
	defer hole.Close()
	conn, err := net.DialUDP("udp", nil, hole.LocalAddr().(*net.UDPAddr))
	if err != nil {
		f.Fatal(err)
	}
	defer conn.Close()
	f.Fuzz(func(t *testing.T, a, b []byte) {
		s := fuzzSession(t, 17)
		s.conn = conn
		c := &SOL{s: s, maxChars: 32, keep: time.Hour}
		c.cond = sync.NewCond(&c.mu)
		p := &pump{c: c, s: s, lastSent: time.Now()}
		w := &solWrite{data: []byte("typed"), done: make(chan error, 1)}
		p.cur = w
		p.out = &outPkt{kind: outData, seq: 2, data: []byte("typed"), deadline: time.Now().Add(time.Hour)}
		p.onPayload(a)
		p.onPayload(b)
		p.tick(time.Now())
	})
}
