#!/usr/bin/env bash
# A bounded soak: the release gateway in front of `seawall sim`, under mixed traffic
# (steady GETs, upstream faults, slow readers, slow uploaders: bench/soak_traffic.py) for
# a fixed time, sampling the gateway's RSS (VmRSS) and open fds every 10 s into a CSV.
# Fails (exit 1) when either trends upward after the warm-up.
#
#   bench/soak.sh [--minutes N] [--csv FILE] [--rate R] [--no-build]
#     --minutes N   run length (default 30); the first 20% is warm-up
#     --csv FILE    samples (default bench/results/soak-<date>.csv); a summary goes beside it
#     --rate R      steady GETs per second (default 200)
#     --no-build    use the binary as it is (SEAWALL_BIN, default target/release/seawall)
#   SOAK_PORT     the gateway's port (default 18780; the sim and admin take the next two)
#
# The verdict, on the samples after the warm-up (first 20% of the run):
#   - quarters: the mean of the last quarter of the run against the mean of the second
#     quarter may grow by at most 10% RSS (and 4 MiB, so that a small heap's noise does
#     not count) and 20 fds;
#   - slope: the least-squares line through the post-warm-up samples, projected over
#     that window, may rise by at most the same amounts.
# Either one failing fails the soak. Needs python3 and curl; starts and stops only its
# own processes.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$HERE/.."

MINUTES=30
CSV=""
RATE=200
BUILD=1
while [[ $# -gt 0 ]]; do
  case $1 in
    --minutes) MINUTES=$2; shift 2 ;;
    --csv) CSV=$2; shift 2 ;;
    --rate) RATE=$2; shift 2 ;;
    --no-build) BUILD=0; shift ;;
    -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
    *) echo "soak.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
[[ $MINUTES =~ ^[0-9]+$ && $MINUTES -ge 1 ]] || { echo "soak.sh: --minutes takes a whole number >= 1" >&2; exit 2; }

TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
BIN=${SEAWALL_BIN:-$TARGET_DIR/release/seawall}
if [[ $BUILD == 1 && -z ${SEAWALL_BIN:-} ]]; then
  (cd "$ROOT" && cargo build --release -p seawall)
fi
[[ -x $BIN ]] || { echo "soak.sh: no binary at $BIN" >&2; exit 2; }

mkdir -p "$HERE/results"
CSV=${CSV:-$HERE/results/soak-$(date +%Y%m%d-%H%M%S).csv}
SUMMARY="${CSV%.csv}.summary.txt"
PORT=${SOAK_PORT:-18780}
SIM_PORT=$((PORT + 1))
ADMIN_PORT=$((PORT + 2))
WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT

cat >"$WORK/soak.yaml" <<YAML
admin:
  listen: 127.0.0.1:$ADMIN_PORT
listeners:
  - name: public
    listen: 127.0.0.1:$PORT
    body_read_timeout: 5s
    routes:
      - name: faults
        match: { host: faults.test, path_prefix: / }
        upstream: faulty
        timeout: 1s
        middleware: [request_id]
      - name: main
        match: { path_prefix: / }
        upstream: sim
        timeout: 5s
        middleware: [request_id]
upstreams:
  - name: sim
    endpoints: ["127.0.0.1:$SIM_PORT"]
    timeouts: { connect: 1s, response_header: 2s }
  - name: faulty
    endpoints: ["127.0.0.1:$SIM_PORT"]
    timeouts: { connect: 1s, response_header: 900ms }
YAML

"$BIN" sim --listen "127.0.0.1:$SIM_PORT" >"$WORK/sim.log" 2>&1 &
PIDS+=($!)
"$BIN" check "$WORK/soak.yaml" >/dev/null
"$BIN" run --config "$WORK/soak.yaml" --no-watch >"$WORK/gateway.log" 2>&1 &
GW=$!
PIDS+=($GW)
for _ in $(seq 1 100); do
  curl -fs -o /dev/null "http://127.0.0.1:$PORT/" && break
  sleep 0.1
done
curl -fs -o /dev/null "http://127.0.0.1:$PORT/" || { echo "soak.sh: gateway did not start" >&2; cat "$WORK/gateway.log" >&2; exit 1; }

SECONDS_TOTAL=$((MINUTES * 60))
# The traffic runs 15 s past the last sample, so every sample is taken under load.
python3 "$HERE/soak_traffic.py" --target "127.0.0.1:$PORT" --seconds "$((SECONDS_TOTAL + 15))" --rate "$RATE" \
  >"$WORK/traffic.json" 2>"$WORK/traffic.err" &
DRIVER=$!
PIDS+=($DRIVER)

echo "soak: ${MINUTES} min, gateway pid $GW on :$PORT, samples every 10 s in $CSV"
echo "elapsed_s,rss_kb,fds,upstream_requests" >"$CSV"
start=$(date +%s)
while :; do
  now=$(( $(date +%s) - start ))
  [[ -d /proc/$GW ]] || { echo "soak.sh: the gateway exited during the soak" >&2; cat "$WORK/gateway.log" >&2; exit 1; }
  rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$GW/status")
  fds=$(ls "/proc/$GW/fd" | wc -l)
  reqs=$(curl -s --max-time 2 "http://127.0.0.1:$SIM_PORT/__sim/stats" | grep -o '"requests":[0-9]*' | cut -d: -f2 || true)
  echo "$now,$rss,$fds,${reqs:-}" >>"$CSV"
  (( now >= SECONDS_TOTAL )) && break
  sleep $(( 10 - ( ( $(date +%s) - start ) % 10 ) ))
done
wait "$DRIVER" || true  # at most 15 s (+ the driver's own 30 s bound)

verdict=$(awk -F, -v total="$SECONDS_TOTAL" '
  NR == 1 { next }
  { t[n] = $1; r[n] = $2; f[n] = $3; n++ }
  function mean(a, lo, hi,   i, s, k) { s = 0; k = 0
    for (i = 0; i < n; i++) if (t[i] >= lo && t[i] < hi) { s += a[i]; k++ }
    return k ? s / k : 0 }
  function slope(a, lo,   i, k, st, sa, stt, sta) { k = st = sa = stt = sta = 0
    for (i = 0; i < n; i++) if (t[i] >= lo) { k++; st += t[i]; sa += a[i]; stt += t[i] * t[i]; sta += t[i] * a[i] }
    return (k > 1 && k * stt - st * st) ? (k * sta - st * sa) / (k * stt - st * st) : 0 }
  END {
    warm = total * 0.2
    r2 = mean(r, total * 0.25, total * 0.5); r4 = mean(r, total * 0.75, total + 1)
    f2 = mean(f, total * 0.25, total * 0.5); f4 = mean(f, total * 0.75, total + 1)
    span = total - warm
    rgrow = slope(r, warm) * span; fgrow = slope(f, warm) * span
    rtol = r2 * 0.10; if (rtol < 4096) rtol = 4096
    ok = (r4 - r2 <= rtol) && (f4 - f2 <= 20) && (rgrow <= rtol) && (fgrow <= 20)
    printf "samples %d, warm-up %ds\n", n, warm
    printf "RSS  KiB: 2nd quarter mean %.0f, last quarter mean %.0f (%+.0f, limit +%.0f); slope %+.1f KiB/min, %+.0f KiB over the window\n", r2, r4, r4 - r2, rtol, slope(r, warm) * 60, rgrow
    printf "fds:      2nd quarter mean %.1f, last quarter mean %.1f (%+.1f, limit +20); slope %+.2f /min, %+.1f over the window\n", f2, f4, f4 - f2, slope(f, warm) * 60, fgrow
    printf "verdict: %s\n", ok ? "PASS (no upward trend)" : "FAIL (upward trend after warm-up)"
  }' "$CSV")

{
  echo "soak: $MINUTES min, rate $RATE/s, $(date -u +%Y-%m-%dT%H:%M:%SZ), $("$BIN" --version 2>/dev/null || echo seawall)"
  echo "$verdict"
  echo "traffic: $(cat "$WORK/traffic.json" 2>/dev/null)"
} | tee "$SUMMARY"
[[ -s $WORK/traffic.err ]] && { echo "traffic driver stderr:"; tail -5 "$WORK/traffic.err"; }
grep -q '^verdict: PASS' <<<"$verdict"
