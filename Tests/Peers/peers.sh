#!/usr/bin/env bash
# Protocol peers for emit's facility-meter tests, on 127.0.0.1 only:
#   ipmi     two OpenIPMI ipmi_sim BMCs, IPMI 2.0 lanplus, DCMI power reading from ipmi/dcmi_reading.c
#   nut      NUT upsd + dummy-ups (four UPSes: realpower, load only, VA only, energy counter)
#   snmp     snmpsim v2c agent with real APC PDU recordings and Raritan / ENTITY-SENSOR data
#   redfish  a Redfish mockup service (redfish/server.py): our energy mockup and DMTF's rackmount
#   otlp     no daemon: a venv with the rotel collector and opentelemetry-proto, for the OTLP tests
#            (which start their collectors on free ports); its python is $STATE/otlp/venv/bin/python3
#
# peers.sh start [PEER...]   start (idempotent: a peer that answers is left running); installs
#                            missing Debian packages when root. Prints "PEER ready ..." per peer.
# peers.sh stop [PEER...]    stop what this script started (by pid file, never by name)
# peers.sh env               the endpoints as shell variables
# State (pid files, logs, venv, compiled module): $EMIT_PEERS_STATE, default /tmp/emit-test-peers.
# Daemons are started with fd 9 closed: it holds the per-peer start lock.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
STATE="${EMIT_PEERS_STATE:-/tmp/emit-test-peers}"
IPMI_PORT="${EMIT_PEER_IPMI_PORT:-19623}"
NUT_PORT="${EMIT_PEER_NUT_PORT:-13493}"
SNMP_PORT="${EMIT_PEER_SNMP_PORT:-11161}"
REDFISH_PORT="${EMIT_PEER_REDFISH_PORT:-18002}"
DMTF_PORT="${EMIT_PEER_DMTF_PORT:-18003}"
ALL=(ipmi nut snmp redfish otlp)
umask 022   # snmpsim runs as nobody and must read its venv and data
# The daemons must not inherit our caller's descriptors: a test runner that waits for EOF on
# a pipe or socket it gave us would wait for as long as the daemons live. (255 is bash's script.)
for fd in /proc/$$/fd/*; do
  fd=${fd##*/}
  [ "$fd" -gt 2 ] && [ "$fd" -lt 255 ] && eval "exec $fd>&-" 2>/dev/null || true
done
mkdir -p "$STATE"

say() { echo "$*"; }
die() { echo "peers: $*" >&2; exit 1; }

# alive PIDFILE WORD: the pid in PIDFILE runs (not a zombie) and its command line contains WORD.
alive() {
  local pid
  [ -f "$1" ] || return 1
  pid="$(tr -dc 0-9 <"$1" 2>/dev/null)"  # a daemon may remove its pid file as it exits
  [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] || return 1
  grep -q '^State:[[:space:]]*Z' "/proc/$pid/status" 2>/dev/null && return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "$2"
}

stop_pidfile() {
  local file="$1" word="$2" pid
  alive "$file" "$word" || { rm -f "$file"; return 0; }
  pid="$(tr -dc 0-9 <"$file" 2>/dev/null)"
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 50); do alive "$file" "$word" || break; sleep 0.1; done
  alive "$file" "$word" && kill -KILL "$pid" 2>/dev/null || true
  rm -f "$file"
}

# need THING PACKAGE...: install the Debian packages when THING (a program on PATH, or a path)
# is missing. Only root installs; anyone else is told what to install.
need() {
  local thing="$1"; shift
  command -v "$thing" >/dev/null 2>&1 || [ -e "$thing" ] && return 0
  install_packages "$@"
}

need_package() {
  dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed' || install_packages "$1"
}

install_packages() {
  [ "$(id -u)" -eq 0 ] || die "missing: apt-get install $*"
  export DEBIAN_FRONTEND=noninteractive
  ( flock -w 600 8
    apt-get install -y -q --no-install-recommends "$@" >>"$STATE/apt.log" 2>&1 \
      || { apt-get update -q >>"$STATE/apt.log" 2>&1 && apt-get install -y -q --no-install-recommends "$@" >>"$STATE/apt.log" 2>&1; }
  ) 8>"$STATE/.apt.lock" || { tail -20 "$STATE/apt.log" >&2; die "installing $* failed"; }
}

wait_for() {  # wait_for SECONDS COMMAND...: retry until COMMAND succeeds
  local tries=$(( $1 * 10 )); shift
  for _ in $(seq "$tries"); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
  return 1
}

# Two BMCs: "a" (IPMI_PORT) whose power the meter tests change, "b" (IPMI_PORT+2) that stays at
# 250 W for the command-line tests running beside them.
ipmi_probe() { ipmitool -I lanplus -C 3 -N 1 -R 1 -H 127.0.0.1 -p "$1" -U admin -P secret mc info; }
start_ipmi() {
  local bmc port run up=1
  for bmc in a b; do
    port=$IPMI_PORT; [ $bmc = b ] && port=$((IPMI_PORT + 2))
    alive "$STATE/ipmi/$bmc/ipmi_sim.pid" ipmi_sim && ipmi_probe "$port" >/dev/null 2>&1 || up=0
  done
  if [ $up = 1 ]; then say "ipmi ready: udp 127.0.0.1:$IPMI_PORT and :$((IPMI_PORT + 2)) (already running)"; return; fi
  stop_ipmi
  need ipmi_sim openipmi
  need /usr/include/OpenIPMI/mcserv.h libopenipmi-dev
  need ipmitool ipmitool
  need gcc gcc libc6-dev
  rm -rf "$STATE/ipmi"; mkdir -p "$STATE/ipmi"
  gcc -shared -fPIC -O2 -Wall -o "$STATE/ipmi/dcmi_reading.so" "$HERE/ipmi/dcmi_reading.c" 2>"$STATE/ipmi/gcc.log" \
    || { cat "$STATE/ipmi/gcc.log" >&2; die "compiling the DCMI module failed"; }
  echo secret >"$STATE/ipmi/password"  # for ipmitool -f
  for bmc in a b; do
    port=$IPMI_PORT; [ $bmc = b ] && port=$((IPMI_PORT + 2))
    run="$STATE/ipmi/$bmc"
    mkdir -p "$run/ipmi_sim/emitbmc"
    sdrcomp -o "$run/ipmi_sim/emitbmc/sdr.20.main" "$HERE/ipmi/bmc.sdrs" >"$run/sdrcomp.log" 2>&1 || { cat "$run/sdrcomp.log" >&2; die "sdrcomp failed"; }
    echo 250 >"$run/power"        # the DCMI reading in W; tests write this file
    sed -e "s|@PORT@|$port|" -e "s|@PASSWORD@|secret|" -e "s|@MODULE@|$STATE/ipmi/dcmi_reading.so|" -e "s|@STATE@|$run/power|" \
      "$HERE/ipmi/lan.conf.in" >"$run/lan.conf"
    ipmi_sim -c "$run/lan.conf" -f "$HERE/ipmi/bmc.emu" -s "$run" -n </dev/null >"$run/ipmi_sim.log" 2>&1 9>&- &
    echo $! >"$run/ipmi_sim.pid"
    wait_for 10 ipmi_probe "$port" || { cat "$run/ipmi_sim.log" >&2; die "ipmi_sim did not answer on udp 127.0.0.1:$port"; }
  done
  say "ipmi ready: udp 127.0.0.1:$IPMI_PORT and :$((IPMI_PORT + 2))"
}
stop_ipmi() { stop_pidfile "$STATE/ipmi/a/ipmi_sim.pid" ipmi_sim; stop_pidfile "$STATE/ipmi/b/ipmi_sim.pid" ipmi_sim; }

nut_probe() {
  local s
  for ups in ups ups-load ups-va ups-energy ups-bad-nominal ups-unread; do
    s="$(upsc "$ups@127.0.0.1:$NUT_PORT" ups.status 2>/dev/null)" || return 1
    [ -n "$s" ] && [ "$s" != WAIT ] || return 1
  done
}
start_nut() {
  local run="$STATE/nut" u
  if alive "$run/state/upsd.pid" upsd && nut_probe; then say "nut ready: tcp 127.0.0.1:$NUT_PORT (already running)"; return; fi
  stop_nut
  need /lib/nut/upsd nut-server
  need upsc nut-client
  rm -rf "$run"; mkdir -p "$run/etc" "$run/state"
  cp "$HERE/nut/nut.conf" "$HERE/nut/upsd.users" "$run/etc/"
  sed "s|@PORT@|$NUT_PORT|" "$HERE/nut/upsd.conf.in" >"$run/etc/upsd.conf"
  # Four UPSes from one data file each: the tests edit them (dummy-once re-reads on mtime change).
  : >"$run/etc/ups.conf"
  for u in ups ups-load ups-va ups-energy ups-bad-nominal ups-unread; do
    sed "s|@RUN@|$run|; s|^\[ups\]|[$u]|; s|ups.dev|$u.dev|" "$HERE/nut/ups.conf.in" >>"$run/etc/ups.conf"
  done
  cp "$HERE/nut/ups.dev" "$run/ups.dev"
  grep -v '^ups.realpower:' "$HERE/nut/ups.dev" >"$run/ups-load.dev"
  grep -v '^ups.realpower\|^ups.load' "$HERE/nut/ups.dev" >"$run/ups-va.dev"
  { cat "$HERE/nut/ups.dev"; echo "experimental.output.energy: 1000"; } >"$run/ups-energy.dev"
  # Quirks of real drivers (NUT's device dump library): a nominal rating no UPS has beside a
  # load only, and the all-zero output of a driver that cannot read power (dumps marked #BAD).
  grep -v '^ups.realpower' "$HERE/nut/ups.dev" | sed 's/^ups.load: .*/ups.load: 26/' >"$run/ups-bad-nominal.dev"
  echo "ups.realpower.nominal: 88" >>"$run/ups-bad-nominal.dev"
  sed 's/^ups.realpower: .*/ups.realpower: 0/; s/^ups.load: .*/ups.load: 0\t#BAD/; s/^ups.power: .*/ups.power: 0/' "$HERE/nut/ups.dev" >"$run/ups-unread.dev"
  chmod 600 "$run/etc/upsd.users" "$run/etc/upsd.conf"; chmod 700 "$run/state"
  export NUT_CONFPATH="$run/etc" NUT_STATEPATH="$run/state" NUT_ALTPIDPATH="$run/state"
  for u in ups ups-load ups-va ups-energy ups-bad-nominal ups-unread; do
    /lib/nut/dummy-ups -a "$u" -u root </dev/null >>"$run/driver.log" 2>&1 9>&- || { cat "$run/driver.log" >&2; die "dummy-ups $u failed"; }
  done
  /lib/nut/upsd -u root </dev/null >"$run/upsd.log" 2>&1 9>&- || { cat "$run/upsd.log" >&2; die "upsd failed"; }
  wait_for 20 nut_probe || { cat "$run/upsd.log" "$run/driver.log" >&2; die "upsd did not serve the UPSes on 127.0.0.1:$NUT_PORT"; }
  say "nut ready: tcp 127.0.0.1:$NUT_PORT"
}
stop_nut() {
  local run="$STATE/nut" f
  stop_pidfile "$run/state/upsd.pid" upsd
  for f in "$run"/state/dummy-ups-*.pid; do [ -e "$f" ] && stop_pidfile "$f" dummy-ups; done
  return 0
}

snmp_probe() { snmpget -v2c -c pdu-live -t 0.3 -r 0 "127.0.0.1:$SNMP_PORT" 1.3.6.1.2.1.1.5.0; }
start_snmp() {
  local run="$STATE/snmp/run" venv="$STATE/snmp/venv" drop=()
  if alive "$run/snmpsim.pid" snmpsim-command-responder && snmp_probe >/dev/null 2>&1; then say "snmp ready: udp 127.0.0.1:$SNMP_PORT (already running)"; return; fi
  stop_pidfile "$run/snmpsim.pid" snmpsim-command-responder
  need snmpget snmp
  need /usr/bin/python3 python3
  need_package python3-venv
  # A venv from Debian's python3: snmpsim drops to nobody, who cannot read a python under /root.
  if ! cmp -s "$HERE/snmp/requirements.txt" "$venv/.requirements.txt"; then
    rm -rf "$venv"
    { /usr/bin/python3 -m venv "$venv" && "$venv/bin/pip" install -q --no-input -r "$HERE/snmp/requirements.txt"; } >"$STATE/snmp-install.log" 2>&1 \
      || { tail -20 "$STATE/snmp-install.log" >&2; die "installing snmpsim failed"; }
    cp "$HERE/snmp/requirements.txt" "$venv/.requirements.txt"
  fi
  rm -rf "$run"; mkdir -p "$run/data" "$run/cache"
  cp "$HERE"/snmp/data/*.snmprec "$run/data/"
  if [ "$(id -u)" -eq 0 ]; then chown -R nobody:nogroup "$run"; drop=(--process-user=nobody --process-group=nogroup); fi
  "$venv/bin/snmpsim-command-responder" --data-dir="$run/data" --cache-dir="$run/cache" \
    --agent-udpv4-endpoint="127.0.0.1:$SNMP_PORT" "${drop[@]}" --logging-method=file:"$run/snmpsim.log" \
    </dev/null >"$run/stdout.log" 2>&1 9>&- &
  echo $! >"$run/snmpsim.pid"
  wait_for 60 snmp_probe || { cat "$run/stdout.log" >&2; die "snmpsim did not answer on udp 127.0.0.1:$SNMP_PORT"; }
  say "snmp ready: udp 127.0.0.1:$SNMP_PORT"
}

redfish_probe() { python3 -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:$1/redfish/v1', timeout=1)"; }
start_redfish() {
  local run="$STATE/redfish" ok=1
  alive "$run/energy.pid" server.py && redfish_probe "$REDFISH_PORT" || ok=0
  alive "$run/dmtf.pid" server.py && redfish_probe "$DMTF_PORT" || ok=0
  if [ $ok = 1 ]; then say "redfish ready: http://127.0.0.1:$REDFISH_PORT http://127.0.0.1:$DMTF_PORT (already running)"; return; fi
  stop_redfish
  need python3 python3
  mkdir -p "$run"
  python3 "$HERE/redfish/server.py" "$HERE/redfish/mockups/energy" "$REDFISH_PORT" </dev/null >"$run/energy.log" 2>&1 9>&- &
  echo $! >"$run/energy.pid"
  python3 "$HERE/redfish/server.py" "$HERE/redfish/mockups/dmtf-public-rackmount1" "$DMTF_PORT" </dev/null >"$run/dmtf.log" 2>&1 9>&- &
  echo $! >"$run/dmtf.pid"
  wait_for 10 redfish_probe "$REDFISH_PORT" && wait_for 10 redfish_probe "$DMTF_PORT" \
    || { cat "$run"/*.log >&2; die "the Redfish mockups did not answer"; }
  say "redfish ready: http://127.0.0.1:$REDFISH_PORT http://127.0.0.1:$DMTF_PORT"
}
stop_redfish() { stop_pidfile "$STATE/redfish/energy.pid" server.py; stop_pidfile "$STATE/redfish/dmtf.pid" server.py; }

start_otlp() {
  local venv="$STATE/otlp/venv"
  if ! cmp -s "$HERE/otlp/requirements.txt" "$venv/.requirements.txt"; then
    need_package python3-venv
    rm -rf "$venv"
    mkdir -p "$STATE/otlp"
    { /usr/bin/python3 -m venv "$venv" && "$venv/bin/pip" install -q --no-input -r "$HERE/otlp/requirements.txt"; } >"$STATE/otlp-install.log" 2>&1 \
      || { cat "$STATE/otlp-install.log" >&2; die "cannot install the OTLP peers (rotel, opentelemetry-proto)"; }
    cp "$HERE/otlp/requirements.txt" "$venv/.requirements.txt"
  fi
  say "otlp ready: $venv/bin/python3"
}

command="${1:-}"; shift || true
peers=("$@"); [ ${#peers[@]} -gt 0 ] || peers=("${ALL[@]}")
case "$command" in
  start)
    for p in "${peers[@]}"; do
      case "$p" in ipmi|nut|snmp|redfish|otlp) ;; *) die "unknown peer $p (${ALL[*]})";; esac
      # One start per peer at a time: tests running in parallel may ask together.
      ( flock -w 300 9 || die "timed out waiting for $STATE/$p.lock"; "start_$p" ) 9>"$STATE/$p.lock"
    done ;;
  stop)
    for p in "${peers[@]}"; do
      case "$p" in
        ipmi) stop_ipmi ;;
        nut) stop_nut ;;
        snmp) stop_pidfile "$STATE/snmp/run/snmpsim.pid" snmpsim-command-responder ;;
        redfish) stop_redfish ;;
        otlp) ;;  # nothing runs
        *) die "unknown peer $p" ;;
      esac
    done ;;
  env)
    echo "EMIT_PEERS_STATE=$STATE IPMI_PORT=$IPMI_PORT NUT_PORT=$NUT_PORT SNMP_PORT=$SNMP_PORT REDFISH_PORT=$REDFISH_PORT DMTF_PORT=$DMTF_PORT" ;;
  *) echo "usage: peers.sh start|stop|env [${ALL[*]}]" >&2; exit 2 ;;
esac
