#!/usr/bin/env bash
# make demo: the on-call story on a simulated fleet.
#
# Starts `rmm sim` for every host in inventory.yaml (all on loopback, high
# ports, no root needed), then walks the night this tool exists for: a
# database server has panicked, DNS is down, on-call reaches its BMC by name.
# Every command below is exactly what you would type. The fleet is stopped
# on every exit path.
set -euo pipefail

RMM=${1:-bin/rmm}
[ -x "$RMM" ] || { echo "demo: $RMM not built (run make build)" >&2; exit 1; }
RMM=$(cd "$(dirname "$RMM")" && pwd)/$(basename "$RMM")
cd "$(dirname "$0")/.."

# Everything the demo writes (audit journal, known BMC certificates, health
# state) goes to a scratch directory, not your home.
work=$(mktemp -d "${TMPDIR:-/tmp}/rmm-demo.XXXXXX")
export XDG_STATE_HOME=$work/state RMM_INVENTORY=$PWD/inventory.yaml RMM_NO_SYSLOG=1
export NO_COLOR=${NO_COLOR:-}

simpid=
cleanup() {
	if [ -n "$simpid" ] && kill -0 "$simpid" 2>/dev/null; then
		kill -INT "$simpid" 2>/dev/null || true
		for _ in $(seq 50); do kill -0 "$simpid" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$simpid" 2>/dev/null || true
	fi
	rm -rf "$work"
}
trap cleanup EXIT INT TERM

bold= off=
if [ -t 1 ] && [ -z "$NO_COLOR" ]; then bold=$(tput bold 2>/dev/null || true); off=$(tput sgr0 2>/dev/null || true); fi
say() { printf '\n%s== %s%s\n' "$bold" "$*" "$off"; }
run() { printf '%s$ %s%s\n' "$bold" "$*" "$off"; "$@" || printf '(exit %d)\n' "$?"; }

say "Starting a simulated fleet: one BMC per host in inventory.yaml, on 127.0.1.x and 127.0.2.x"
"$RMM" sim --for 5m --ready-file "$work/sim.ready" >"$work/sim.out" 2>"$work/sim.err" &
simpid=$!
for _ in $(seq 150); do
	[ -s "$work/sim.ready" ] && break
	kill -0 "$simpid" 2>/dev/null || { cat "$work/sim.err" >&2; exit 1; }
	sleep 0.1
done
[ -s "$work/sim.ready" ] || { echo "demo: the simulator did not start" >&2; cat "$work/sim.err" >&2; exit 1; }
head -8 "$work/sim.out"; echo "  ... ($(($(wc -l <"$work/sim.out") - 1)) simulated BMCs; a few are broken on purpose: dead, slow, wrong password, SOL busy)"

say "03:12 — db1 stopped answering. DNS is down too. The inventory maps names to BMC IPs:"
run "$RMM" list @db

say "Which BMCs answer? (the fleet, in parallel; dead ones cost one --timeout, not one each)"
run "$RMM" power status all --timeout 5s

say "Why did db1 die? Its System Event Log:"
run "$RMM" sel db1

say "What did its console say? (capture 3 seconds of Serial-over-LAN, no ipmitool involved)"
run "$RMM" console db1 --capture 3s

say "Power-cycle it by name. On a terminal rmm names the host and its BMC IP and asks; a script says --yes."
run "$RMM" power cycle db1 --yes --wait --reason "kernel panic, INC-4312"

say "Is it coming back? Watch the console until the login prompt:"
run "$RMM" console db1 --capture 20s --until 'login:'

say "The record of what was done, by whom and why:"
run "$RMM" journal

say "And the cron job's view of the fleet (Nagios exit codes):"
run "$RMM" health @db --timeout 5s

say "Done. The simulated fleet stops now."
