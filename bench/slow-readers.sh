#!/usr/bin/env bash
# Memory under slow readers: N HTTP/1.1 clients ask the gateway for a large body and never
# read it. Samples the gateway's RSS before, while they are stalled, after the gateway cut
# them (route deadline + 1 s grace) and after a quiet period, and checks that the
# upstream's in-flight count went back to 0. Bounded: about 45 s; stops what it started.
#   N=1000           slow connections
#   TIMEOUT=10s      the route deadline
#   SEAWALL_BIN      binary (default: target/release/seawall)
# Usage: bench/slow-readers.sh            (build first: cargo build --release)
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
BIN=${SEAWALL_BIN:-$HERE/../target/release/seawall}
N=${N:-1000}
TIMEOUT=${TIMEOUT:-10s}
TMP=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$TMP"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
SIM_PORT=$(free_port); GW_PORT=$(free_port); ADMIN_PORT=$(free_port)
cat > "$TMP/gw.yaml" <<EOF
admin: { listen: 127.0.0.1:$ADMIN_PORT }
listeners:
  - name: public
    listen: 127.0.0.1:$GW_PORT
    max_connections: 20000
    routes:
      - { name: r, match: { host: "*", path_prefix: / }, upstream: sim, timeout: $TIMEOUT }
upstreams:
  - { name: sim, endpoints: ["127.0.0.1:$SIM_PORT"], pool: { max_connections_per_endpoint: 4096 } }
EOF
ulimit -n 65536 2>/dev/null || true
"$BIN" sim --listen "127.0.0.1:$SIM_PORT" >/dev/null 2>&1 & PIDS+=($!)
"$BIN" run --config "$TMP/gw.yaml" >"$TMP/gw.log" 2>&1 & GW=$!; PIDS+=($GW)
for _ in $(seq 50); do curl -sf "127.0.0.1:$GW_PORT/" >/dev/null && break; sleep 0.1; done

rss() { awk '/VmRSS/ {printf "%.1f", $2/1024}' "/proc/$GW/status"; }
inflight() { curl -s "127.0.0.1:$SIM_PORT/__sim/stats" | python3 -c 'import json,sys; print(json.load(sys.stdin).get("requests_in_flight"))'; }
in_use() { curl -s "127.0.0.1:$ADMIN_PORT/upstreams" | python3 -c 'import json,sys; print(json.load(sys.stdin)["upstreams"][0]["endpoints"][0]["open"])'; }
# Warm up the ordinary path first so the baseline includes its steady allocations.
for _ in $(seq 200); do curl -s -o /dev/null "127.0.0.1:$GW_PORT/"; done
BASE=$(rss)

python3 - "$GW_PORT" "$N" <<'EOF' & PIDS+=($!)
import socket, sys, time
port, n = int(sys.argv[1]), int(sys.argv[2])
socks = []
for _ in range(n):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(("127.0.0.1", port))
    s.sendall(b"GET /bytes/100000000 HTTP/1.1\r\nhost: x\r\n\r\n")
    socks.append(s)
time.sleep(40)
EOF
sleep 6
STALLED=$(rss); STALLED_INFLIGHT=$(inflight); STALLED_OPEN=$(in_use)
DEADLINE_S=$(python3 -c "import sys; v='$TIMEOUT'; print(float(v[:-2])/1000 if v.endswith('ms') else float(v[:-1]))")
sleep "$(python3 -c "print(max(0, $DEADLINE_S + 4 - 6))")"
CUT=$(rss); CUT_INFLIGHT=$(inflight); CUT_OPEN=$(in_use)
sleep 15
QUIET=$(rss)
PER_CONN=$(python3 -c "print(round(($STALLED - $BASE) * 1024 / $N, 1))")
echo "connections=$N timeout=$TIMEOUT"
echo "rss_mib baseline=$BASE stalled=$STALLED after_cut=$CUT quiet=$QUIET"
echo "per_stalled_connection_kib=$PER_CONN"
echo "upstream_in_flight stalled=$STALLED_INFLIGHT after_cut=$CUT_INFLIGHT"
echo "upstream_connections_open stalled=$STALLED_OPEN after_cut=$CUT_OPEN"
[[ $CUT_INFLIGHT == 0 ]] || { echo "FAIL: upstream requests still in flight after the deadline" >&2; exit 1; }
