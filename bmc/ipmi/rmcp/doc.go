// Package rmcp is rmm's IPMI v2.0 RMCP+ ("lanplus") client session layer.
//
// go-ipmi encodes messages well but its client session cannot be trusted
// with a console: it derives AES-CBC IVs and its first sequence number from
// math/rand seeded with the current second, mixes sequence numbers up when
// a client is shared, leaks its socket when Connect fails and retries five
// times a second with no backoff. None of that can be fixed from outside, so
// this package owns the session (handshake, keys, sequence numbers,
// integrity, encryption, retransmission) and uses go-ipmi only for what it
// gets right: message structs (pkg/command, pkg/rmcpplus), key derivation
// (pkg/crypto) and decoding tables (pkg/types).
//
// Rules the code keeps, and why:
//
//   - Every AES-CBC IV is 16 fresh bytes from crypto/rand; so are the console
//     session ID and the RAKP console random number. An IV repeated under one
//     key lets an observer compare the first blocks of two SOL packets, and
//     SOL packets carry passwords typed on a console.
//   - One connected UDP socket per session, dialled through bmc.DialIP (never
//     a name, never DNS), closed on every path, including a failed open.
//   - A Session is used by one goroutine at a time; a mutex enforces it. Two
//     goroutines interleaving requests on one session is what breaks
//     go-ipmi's client, so here the second one waits instead.
//   - Outbound session sequence numbers start at 1 and only grow. Inbound
//     packets are checked against a sliding window and, when integrity was
//     negotiated, against their AuthCode; a packet that fails is dropped and
//     counted, never acted on.
//   - Retransmissions are bounded, back off and stay inside the context
//     deadline: commands from 250 ms (doubling, capped at 2 s), session
//     setup from 1 s (capped at 4 s), because every copy of an Open Session
//     Request costs the BMC a session slot. A retransmitted request keeps
//     its IPMI sequence number, so the answer to an earlier copy still
//     counts; answers to nothing we asked are discarded, not errors.
//   - No session is left on the BMC by a handshake that fails: a half-open
//     one (after Open Session) is freed with a RAKP 3 error status, one the
//     BMC may have activated (after RAKP 3) gets Close Session, and the
//     extra sessions a retransmitted Open Session Request allocated are
//     freed as their answers arrive.
//   - No goroutine outlives a call, except the one pump goroutine of an open
//     SOL console, which Close stops.
//   - Get Channel Payload Support (0x4E) is never sent: it crashes ipmi_sim
//     for channel 0x0E, and nothing here needs it.
//
// Errors wrap the sentinels of package bmc (ErrAuth, ErrTimeout,
// ErrUnreachable, ErrBusy, ErrUnsupported, ErrProtocol) so callers can
// classify them.
package rmcp
