#!/usr/bin/env bash
# Upstream connection reuse under steady keep-alive load, read from the gateway's own
# counters: Seawall (bench/seawall.sh's config, with a fixed admin port) in front of the
# harness's nginx upstream; wrk warms up for WARMUP seconds, then runs DURATION seconds;
# `seawall_upstream_requests_total{reused=...}` is read from /metrics after each, and the
# steady phase's reuse ratio is printed. Bounded by the two wrk durations; every process it
# starts is stopped by PID.
#   bench/reuse.sh            # WARMUP=2 DURATION=15 CONNS=50
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
BIN=${SEAWALL_BIN:-$HERE/../target/release/seawall}
WARMUP=${WARMUP:-2} DURATION=${DURATION:-15} CONNS=${CONNS:-50}
PROXY_PORT=${PROXY_PORT:-18480}
UPSTREAM_PORT=${UPSTREAM_PORT:-18481}
ADMIN_PORT=${ADMIN_PORT:-18489}
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
CFG=$(LISTEN_ADDR=127.0.0.1:$PROXY_PORT UPSTREAM_ADDR=127.0.0.1:$UPSTREAM_PORT SEAWALL_BIN=/bin/echo \
  "$HERE/seawall.sh" | awk '{print $3}')
sed -i "s|^  listen: 127.0.0.1:0|  listen: 127.0.0.1:$ADMIN_PORT|" "$CFG"
"$BIN" run --config "$CFG" --no-watch >"$WORK/seawall.log" 2>&1 &
SEAWALL_PID=$!
for _ in $(seq 1 100); do curl -s -o /dev/null "127.0.0.1:$PROXY_PORT/" && break; sleep 0.3; done

counts() {  # prints "reused fresh" for the bench upstream
  curl -s "127.0.0.1:$ADMIN_PORT/metrics" | awk '
    /^seawall_upstream_requests_total\{.*reused="true"/  { r = $NF }
    /^seawall_upstream_requests_total\{.*reused="false"/ { f = $NF }
    END { printf "%d %d\n", r, f }'
}
url="http://127.0.0.1:$PROXY_PORT/"
timeout $((WARMUP + 30)) wrk -t1 -c"$CONNS" -d"${WARMUP}s" "$url" >/dev/null
read -r r0 f0 < <(counts)
timeout $((DURATION + 30)) wrk -t1 -c"$CONNS" -d"${DURATION}s" "$url" >/dev/null
read -r r1 f1 < <(counts)
echo "warm-up: $r0 requests on reused connections, $f0 on new ones"
echo "steady:  $((r1 - r0)) on reused, $((f1 - f0)) on new"
awk -v r=$((r1 - r0)) -v f=$((f1 - f0)) 'BEGIN {
  printf "steady reuse ratio: %.3f%% (%.2f new connections per 1000 requests)\n", 100 * r / (r + f), 1000 * f / (r + f) }'
