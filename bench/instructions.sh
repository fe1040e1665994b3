#!/usr/bin/env bash
# Instructions per proxied request, counted by callgrind (deterministic: the same binary and
# inputs give the same count whatever else the machine is doing). Seawall runs on the config
# bench/seawall.sh writes (default chain; SEAWALL_BENCH_POLICIES=on etc. pass through),
# pinned to one CPU like the harness, in front of the harness's nginx upstream; h2load sends
# N and then 2N requests over 16 keep-alive connections, and the figure is the difference
# of the two totals divided by N, so start-up and shutdown cancel out.
#   bench/instructions.sh                         # N=8000
#   SEAWALL_BENCH_POLICIES=on bench/instructions.sh
#   SEAWALL_BIN=/path/to/other/seawall bench/instructions.sh    # another build
# Needs valgrind, nginx and h2load (bench/install-tools.sh). Bounded: two runs of N and 2N
# requests; every process it starts is stopped by PID.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
BIN=${SEAWALL_BIN:-$HERE/../target/release/seawall}
N=${N:-8000}
PROXY_PORT=${PROXY_PORT:-18380}
UPSTREAM_PORT=${UPSTREAM_PORT:-18381}
WORK=$(mktemp -d)
NGINX_PID=""
SEAWALL_PID=""
cleanup() {
  [[ -n $SEAWALL_PID ]] && kill "$SEAWALL_PID" 2>/dev/null || true
  [[ -f $WORK/upstream-nginx.pid ]] && kill "$(cat "$WORK/upstream-nginx.pid")" 2>/dev/null || true
  [[ -n $NGINX_PID ]] && kill "$NGINX_PID" 2>/dev/null || true
}
trap cleanup EXIT
[[ -x $BIN ]] || (cd "$HERE/.." && cargo build --release -p seawall)
mkdir -p "$WORK/tmp"
sed -e "s/@UPSTREAM_PORT@/$UPSTREAM_PORT/; s/@UPSTREAM_H2_PORT@/$((UPSTREAM_PORT + 1))/" \
  "$HERE/conf/upstream-nginx.conf" >"$WORK/up.conf"
(cd "$WORK" && exec nginx -p "$WORK" -c "$WORK/up.conf") >/dev/null 2>&1 &
NGINX_PID=$!
# seawall.sh execs its binary with the config path as the third argument: ask it for the
# config only.
CFG=$(LISTEN_ADDR=127.0.0.1:$PROXY_PORT UPSTREAM_ADDR=127.0.0.1:$UPSTREAM_PORT SEAWALL_BIN=/bin/echo \
  "$HERE/seawall.sh" | awk '{print $3}')

total() {  # total REQUESTS -> instructions of a whole run with that many requests
  local out=$WORK/callgrind.$1
  timeout 600 taskset -c 1 valgrind --tool=callgrind --callgrind-out-file="$out" \
    "$BIN" run --config "$CFG" --no-watch >"$WORK/seawall.$1.log" 2>&1 &
  SEAWALL_PID=$!
  for _ in $(seq 1 100); do curl -s -o /dev/null "127.0.0.1:$PROXY_PORT/" && break; sleep 0.3; done
  timeout 300 h2load --h1 -n "$1" -c 16 "http://127.0.0.1:$PROXY_PORT/" | grep -E "^requests:" >&2
  kill -TERM "$SEAWALL_PID"; wait "$SEAWALL_PID" 2>/dev/null || true
  SEAWALL_PID=""
  callgrind_annotate "$out" 2>/dev/null | awk '/PROGRAM TOTALS/ { gsub(",", "", $1); print $1 }'
}
one=$(total "$N")
two=$(total $((2 * N)))
echo "instructions: $one for $N requests, $two for $((2 * N)); per request: $(( (two - one) / N ))"
