#!/usr/bin/env bash
# Starts Seawall for bench/proxy-bench.sh (target "ours"): writes a config for the harness's
# LISTEN_ADDR / UPSTREAM_ADDR and execs the release binary.
#   SEAWALL_BIN              binary (default: target/release/seawall)
#   SEAWALL_BENCH_CHAIN      "default" (request_id, access_log, debug: the embedded config's
#                            chain) or "none"
#   SEAWALL_BENCH_POLICIES   "off" (default) or "on": circuit breaker, outlier ejection,
#                            bulkhead and retry budget on the upstream, retries on the route
#   SEAWALL_BENCH_RATELIMIT  "off" (default) or "redis": a rate_limit layer (last in the chain)
#                            with one `store: redis` limit per client IP, too high to be hit
#                            (every request is one Redis round trip; a 1 s Redis timeout so
#                            that the run measures Redis, not the fallback); Redis at
#                            SEAWALL_BENCH_REDIS_URL (default redis://127.0.0.1:6379/)
#   UPSTREAM_TLS_ADDR        set by proxy-bench.sh with UPSTREAM_TLS=1: the upstream's TLS
#                            port, verified against UPSTREAM_CA_FILE with SNI localhost
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
BIN=${SEAWALL_BIN:-$HERE/../target/release/seawall}
case ${SEAWALL_BENCH_CHAIN:-default} in
  default) CHAIN='[request_id, access_log, debug]' ;;
  none) CHAIN='[]' ;;
  *) echo "seawall.sh: SEAWALL_BENCH_CHAIN must be default or none" >&2; exit 2 ;;
esac
case ${SEAWALL_BENCH_RATELIMIT:-off} in
  off) ;;
  redis)
    # Keys of this run only (the prefix names the PID); they expire by themselves.
    RATE_LIMIT="{rate_limit: {redis: {url: \"${SEAWALL_BENCH_REDIS_URL:-redis://127.0.0.1:6379/}\", timeout: 1s, key_prefix: \"seawall-bench:$$:\"}, limits: [{name: bench, key: [client_ip], rate: \"1000000/s\", store: redis}]}}"
    if [[ $CHAIN == '[]' ]]; then CHAIN="[$RATE_LIMIT]"; else CHAIN="${CHAIN%]}, $RATE_LIMIT]"; fi ;;
  *) echo "seawall.sh: SEAWALL_BENCH_RATELIMIT must be off or redis" >&2; exit 2 ;;
esac
ROUTE_POLICIES=""
UPSTREAM_POLICIES=""
case ${SEAWALL_BENCH_POLICIES:-off} in
  off) ;;
  on)
    ROUTE_POLICIES='        retry: { max_attempts: 2, retry_on: [502, 503, 504, connect_error, upstream_reset] }'
    UPSTREAM_POLICIES='    breaker: { window: 10s, min_calls: 20, failure_ratio: 0.5 }
    outlier: { consecutive_failures: 5 }
    concurrency: { max_concurrent: 1000, max_pending: 1000, queue_timeout: 50ms }
    retry_budget: { ratio: 0.2, min_retries_per_second: 10, ttl: 10s }' ;;
  *) echo "seawall.sh: SEAWALL_BENCH_POLICIES must be on or off" >&2; exit 2 ;;
esac
# TLS to the upstream when the harness runs with UPSTREAM_TLS=1 (it then sets both).
ENDPOINT=${UPSTREAM_ADDR:?}
UPSTREAM_TLS=""
if [[ -n ${UPSTREAM_TLS_ADDR:-} ]]; then
  ENDPOINT=$UPSTREAM_TLS_ADDR
  UPSTREAM_TLS="    tls: { server_name: localhost, ca_file: \"${UPSTREAM_CA_FILE:?}\" }"
fi
CFG="$(mktemp -d)/seawall-bench.yaml"
cat >"$CFG" <<YAML
admin:
  listen: 127.0.0.1:0
listeners:
  - name: public
    listen: "${LISTEN_ADDR:?}"
    max_connections: 20000
    routes:
      - name: bench
        match: { path_prefix: / }
        upstream: backend
        timeout: 10s
        middleware: $CHAIN
$ROUTE_POLICIES
upstreams:
  - name: backend
    endpoints: ["$ENDPOINT"]
    timeouts: { connect: 1s, response_header: 5s }
    pool: { max_idle_per_endpoint: 256, idle_timeout: 75s, max_connections_per_endpoint: 1024 }
$UPSTREAM_TLS
$UPSTREAM_POLICIES
YAML
# The access log goes to stdout; the harness sends it to its run log.
exec "$BIN" run --config "$CFG" --no-watch
