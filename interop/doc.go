// Package interop is rmm's interop and reliability suite, and the harness it
// runs on.
//
// The tests (go test ./interop/..., part of make test) drive the real rmm
// binary and rmm's command tree against peers rmm did not write and against
// rmm's own simulated fleet under faults:
//
//   - OpenIPMI's ipmi_sim as the BMC (a farm of them on 127.0.71.x, see
//     StartFarm), with ipmitool and FreeIPMI (ipmipower, ipmi-sel) as
//     reference clients whose answers must agree with rmm's, on ipmi_sim and
//     on rmm's simulator;
//   - the no-DNS proof: rmm's commands run inside a network namespace whose
//     resolver is a canary that counts every query (DNSCanary, Netns), with a
//     positive control that does resolve a name;
//   - network faults at fleet level, interruptions by SIGINT and SIGTERM,
//     secrets scanning (outputs, state files and every process's argv), and
//     TLS pinning and trust on first use.
//
// Missing tools skip loudly, and fail with RMM_REQUIRE_INTEROP=1 (CI); tests
// that need root (network namespaces) skip when not root. Everything binds in
// 127.0.70.0 – 127.0.79.255 on high ports, except inside the suite's own
// network namespace.
//
// The harness here (the ipmi_sim farm, its SOL hub and emulator console
// client, the DNS canary, network namespaces) is also usable from other
// packages, such as benchmarks. Nothing in it resolves a name.
package interop
