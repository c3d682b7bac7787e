#!/usr/bin/env bash
# Runs coturn in the foreground for development and tests, configured from the environment:
#
#   FANOUT_TURN_SECRET=... turn-config/run-coturn.sh
#
#   FANOUT_TURN_SECRET   shared secret, the same as `fanout serve --turn-secret` (required)
#   TURN_LISTEN_IP       address to listen on            (default 127.0.0.1)
#   TURN_PORT            UDP/TCP port                    (default 3478)
#   TURN_RELAY_IP        address relays are opened on     (default: TURN_LISTEN_IP)
#   TURN_EXTERNAL_IP     public[/private] behind 1:1 NAT  (default: none)
#   TURN_MIN_PORT/TURN_MAX_PORT  relay port range          (default 49160-49200)
#   TURN_REALM           realm                            (default fanout)
#   TURN_ALLOWED_PEERS   comma-separated peer addresses allowed despite the private-range
#                        denials, e.g. the SFU's private address
#   TURN_ALLOW_LOOPBACK  1: relay to 127.0.0.1 too (single-machine tests only)
#   TURN_DIR             where the rendered config, log and pid go (default: a temp dir)
#
# It prints the `fanout serve` flags that match, then execs turnserver.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

: "${FANOUT_TURN_SECRET:?set FANOUT_TURN_SECRET (the same value as fanout serve --turn-secret)}"
command -v turnserver >/dev/null || { echo "turnserver not found: apt-get install coturn" >&2; exit 1; }

listen=${TURN_LISTEN_IP:-127.0.0.1}
port=${TURN_PORT:-3478}
dir=${TURN_DIR:-$(mktemp -d)}
mkdir -p "$dir"

external=""
[[ -n "${TURN_EXTERNAL_IP:-}" ]] && external="external-ip=$TURN_EXTERNAL_IP"
allowed=""
if [[ -n "${TURN_ALLOWED_PEERS:-}" ]]; then
  IFS=, read -ra peers <<<"$TURN_ALLOWED_PEERS"
  for p in "${peers[@]}"; do allowed+="allowed-peer-ip=$p"$'\n'; done
fi
loopback=""
[[ "${TURN_ALLOW_LOOPBACK:-0}" == 1 ]] && loopback="allow-loopback-peers"

conf="$dir/turnserver.conf"
while IFS= read -r line; do
  line=${line//@LISTEN_IP@/$listen}
  line=${line//@PORT@/$port}
  line=${line//@RELAY_IP@/${TURN_RELAY_IP:-$listen}}
  line=${line//@EXTERNAL_IP_LINE@/$external}
  line=${line//@MIN_PORT@/${TURN_MIN_PORT:-49160}}
  line=${line//@MAX_PORT@/${TURN_MAX_PORT:-49200}}
  line=${line//@TURN_SECRET@/$FANOUT_TURN_SECRET}
  line=${line//@REALM@/${TURN_REALM:-fanout}}
  line=${line//@ALLOWED_PEER_LINES@/$allowed}
  line=${line//@LOOPBACK_LINE@/$loopback}
  line=${line//@LOG_FILE@/$dir/turnserver.log}
  line=${line//@PID_FILE@/$dir/turnserver.pid}
  printf '%s\n' "$line"
done <"$here/turnserver.conf.template" >"$conf"
chmod 600 "$conf"

echo "coturn on $listen:$port (config $conf); run fanout with:" >&2
echo "  --turn-url 'turn:$listen:$port?transport=udp' --turn-url 'turn:$listen:$port?transport=tcp' --turn-secret <FANOUT_TURN_SECRET>" >&2
exec turnserver -c "$conf"
