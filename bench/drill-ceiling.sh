#!/usr/bin/env bash
# The drill load generator's ceiling: `seawall drill` at fixed arrival rates against a
# standalone `seawall sim` on loopback, 5 s per rate, 64 HTTP/1.1 connections. Prints, per
# rate, what was due, answered, late (sent > 10 ms after its due time) and dropped, the p99
# from due time and the generator's own largest lag. Bounded: 5 s of load per rate.
#
#   bench/drill-ceiling.sh [RATE...]      (default: 20000 30000 40000 50000 70000)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
target="${CARGO_TARGET_DIR:-target}"
cargo build --release -p seawall >/dev/null
bin="$target/release/seawall"
work="$(mktemp -d)"
port="${SIM_PORT:-18089}"
"$bin" sim --listen "127.0.0.1:$port" >"$work/sim.log" 2>&1 &
sim=$!
trap 'kill "$sim" 2>/dev/null || true; rm -rf "$work"' EXIT
sleep 0.5
printf '%8s %9s %9s %8s %8s %9s %9s\n' rate due answered late dropped p99_ms lag_ms
for rate in "${@:-20000 30000 40000 50000 70000}"; do
  for r in $rate; do
    cat >"$work/drill.yaml" <<YAML
target: {gateway: 'http://127.0.0.1:$port'}
load:
  connections: 64
  phases: [{name: steady, duration: 5s, rate: $r}]
  requests: [{path: /}]
thresholds: ['p(99) < 10s']
YAML
    timeout 60 "$bin" drill "$work/drill.yaml" --out "$work/r$r" >/dev/null 2>&1 || true
    python3 - "$work/r$r/report.json" "$r" <<'PY'
import json, sys
r = json.load(open(sys.argv[1])); t = r["totals"]
p99 = r["thresholds"][0]["value"] * 1000 if r["thresholds"][0]["value"] is not None else float("nan")
print(f'{sys.argv[2]:>8} {t["scheduled"]:>9} {t["answered"]:>9} {t["late"]:>8} {t["dropped"]:>8} {p99:>9.1f} {t["generator_lag_max_ms"]:>9.1f}')
PY
  done
done
