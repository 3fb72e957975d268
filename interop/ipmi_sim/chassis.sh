#!/bin/sh
# chassis.sh - the "chassis_control" program for one simulated BMC.
#
# ipmi_sim runs it (through popen, i.e. `/bin/sh -c "..."`) whenever a
# chassis command arrives, appending the operation to the command line
# given in lan.conf:
#
#   chassis.sh DIR IP HOSTPORT get power [boot]   -> prints "power:0|1", "boot:..."
#   chassis.sh DIR IP HOSTPORT set power "0|1"     (power down / up;
#                                                   "cycle" = set 0, then ipmi_sim
#                                                   polls get power each second and
#                                                   sets 1 once it reads 0)
#   chassis.sh DIR IP HOSTPORT set reset "1"       (hard reset)
#   chassis.sh DIR IP HOSTPORT set shutdown "1"    (soft off / ACPI)
#   chassis.sh DIR IP HOSTPORT set identify "SECS FORCE"
#   chassis.sh DIR IP HOSTPORT set boot "none|pxe|default|cdrom|bios"
#
# State lives in plain files in DIR, so tests can read or change it:
#   DIR/power        0 or 1
#   DIR/boot         boot device
#   DIR/chassis.log  one line per *set* (timestamped), for assertions
#
# On power transitions a short boot / shutdown banner is written to the
# host side of the serial console (IP:HOSTPORT, served by the farm's SOL
# hub), so an active SOL session sees the "host" power down and boot.
#
# Gotchas baked in here:
#  * ipmi_sim reads our stdout until EOF, blocking its whole event loop.
#    Anything left running in the background MUST have stdout/stderr
#    redirected, or ipmi_sim hangs until that child exits.
#  * A non-zero exit status makes ipmi_sim answer the IPMI request with
#    completion code 0xff (unspecified error).
#  * Keep "get power" cheap: it runs on every Get Chassis Status.

[ $# -ge 4 ] || { echo "usage: $0 DIR IP HOSTPORT get|set PARM..."; exit 1; }
dir=$1 ip=$2 hostport=$3 op=$4
shift 4

# Write text to the host side of the console without ever blocking ipmi_sim.
say() {
    timeout 2 bash -c 'printf "%b" "$1" > "/dev/tcp/$2/$3"' _ "$1" "$ip" "$hostport" \
        >/dev/null 2>&1 </dev/null &
}

boot_banner() {
    say "\r\nSimBIOS 1.0  host $ip  POST OK\r\nBooting from ${1:-default}...\r\n[    0.000000] Linux version 6.1.0-sim (sim@ipmi_sim)\r\n\r\nsimhost login: "
}

log() { echo "$(date '+%Y-%m-%dT%H:%M:%S.%N') $*" >> "$dir/chassis.log"; }

power() { cat "$dir/power" 2>/dev/null || echo 0; }

case $op in
get)
    for parm in "$@"; do
        case $parm in
        power) p=0; read -r p < "$dir/power" 2>/dev/null; echo "power:$p" ;;  # no fork
        boot)  echo "boot:$(cat "$dir/boot" 2>/dev/null || echo default)" ;;
        *)     echo "unsupported get parameter: $parm"; exit 1 ;;
        esac
    done
    ;;
set)
    while [ $# -ge 2 ]; do
        parm=$1 val=$2
        shift 2
        log "set $parm $val"
        case $parm in
        power)
            old=$(power)
            echo "$val" > "$dir/power"
            if [ "$old" = 1 ] && [ "$val" = 0 ]; then
                say "\r\n[  OK  ] Reached target Power-Off.\r\nreboot: Power down\r\n"
            elif [ "$old" = 0 ] && [ "$val" = 1 ]; then
                boot_banner "$(cat "$dir/boot" 2>/dev/null)"
            fi
            ;;
        reset)
            if [ "$(power)" = 1 ]; then
                say "\r\nreboot: Restarting system\r\n"
                boot_banner "$(cat "$dir/boot" 2>/dev/null)"
            fi
            ;;
        shutdown)
            if [ "$(power)" = 1 ]; then
                say "\r\nThe system is going down for poweroff NOW!\r\nreboot: Power down\r\n"
                echo 0 > "$dir/power"
            fi
            ;;
        boot)     echo "$val" > "$dir/boot" ;;
        identify) echo "$val" > "$dir/identify" ;;
        *)        echo "unsupported set parameter: $parm"; exit 1 ;;
        esac
    done
    ;;
*)
    echo "unknown operation: $op"; exit 1 ;;
esac
exit 0
