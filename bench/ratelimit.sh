#!/usr/bin/env bash
# ratelimit.sh — what a `store: redis` rate limit costs the gateway: req/s and latency of
# Seawall (default chain) with no limit vs with one Redis limit per client IP set far above
# the load (never hit, so every request is allowed and every request is one EVALSHA).
#
# Usage:  bench/ratelimit.sh
#   bench/install-tools.sh once (nginx is the upstream, wrk the load), and a Redis answering
#   at SEAWALL_BENCH_REDIS_URL (default redis://127.0.0.1:6379/; the run writes keys under
#   its own prefix, which expire by themselves, and flushes nothing).
#   REPS (default 3), DURATION (s per measured run, default 10), WARMUP, CONNS, LOADGEN ...
#   as in proxy-bench.sh.
# Each variant is its own proxy-bench.sh run ("ours" is one target), `direct` measured in
# both as the noise check between them. Every run is bounded in time; loopback only.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$HERE/.."
REDIS_URL=${SEAWALL_BENCH_REDIS_URL:-redis://127.0.0.1:6379/}
hostport=${REDIS_URL#redis://}; hostport=${hostport%%/*}; hostport=${hostport##*@}
REDIS_HOST=${hostport%:*}; REDIS_PORT=${hostport##*:}
command -v redis-cli >/dev/null || { echo "ratelimit.sh: redis-cli not found (apt-get install redis-tools)" >&2; exit 1; }
redis-cli -h "$REDIS_HOST" -p "$REDIS_PORT" ping | grep -q PONG \
  || { echo "ratelimit.sh: no Redis answers at $REDIS_HOST:$REDIS_PORT" >&2; exit 1; }
export REPS=${REPS:-3} DURATION=${DURATION:-10}
cargo build --release -p seawall
RESULTS_DIR=${RESULTS_DIR:-${TMPDIR:-/tmp}/seawall-bench/ratelimit-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$RESULTS_DIR"

# EVALSHA calls Redis has served so far: proves the limited run went to Redis per request.
evalsha_calls() {
  redis-cli -h "$REDIS_HOST" -p "$REDIS_PORT" info commandstats \
    | awk -F'[:=,]' '/^cmdstat_evalsha:/ {print $3; found=1} END {if (!found) print 0}'
}

OURS_CMD="env SEAWALL_BENCH_RATELIMIT=off $HERE/seawall.sh" RESULTS_DIR="$RESULTS_DIR/no-limit" \
  "$HERE/proxy-bench.sh" direct ours
before=$(evalsha_calls)
OURS_CMD="env SEAWALL_BENCH_RATELIMIT=redis SEAWALL_BENCH_REDIS_URL=$REDIS_URL $HERE/seawall.sh" \
  RESULTS_DIR="$RESULTS_DIR/redis-limit" "$HERE/proxy-bench.sh" direct ours
after=$(evalsha_calls)

echo
echo "results: $RESULTS_DIR"
# "ours" rows of both runs: req/s median and p99 (summary.md columns 4 and 8).
awk -F'|' '
  FNR == 1 { run = (FILENAME ~ /no-limit/) ? "no limit" : "redis limit" }
  $2 ~ /ours/ { rps[run] = $4 + 0; p50[run] = $7 + 0; p99[run] = $8 + 0 }
  END {
    for (r in rps) printf "%-12s req/s %8.0f   p50 %7.3f ms   p99 %7.3f ms\n", r, rps[r], p50[r], p99[r]
    if (rps["no limit"] > 0 && p99["no limit"] > 0)
      printf "redis limit / no limit: req/s %.2f, p99 %.2f\n", rps["redis limit"] / rps["no limit"], p99["redis limit"] / p99["no limit"]
  }' "$RESULTS_DIR/no-limit/summary.md" "$RESULTS_DIR/redis-limit/summary.md"
echo "EVALSHA calls served by Redis during the limited run (warmup included): $((after - before))"
