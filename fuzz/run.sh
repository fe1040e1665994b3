#!/usr/bin/env bash
# Builds every fuzz target on stable Rust (no cargo-fuzz, no nightly) and runs each for a
# bounded time. Usage: fuzz/run.sh [seconds-per-target] [target...]
#   FUZZ_SECONDS   seconds per target when no argument is given (default 20)
#   FUZZ_JOBS      libFuzzer worker processes per target (default 1)
# A crash stops the run with exit 1 and leaves the input in fuzz/artifacts/<target>/;
# docs/testing.md says how to turn it into a test. New inputs go to fuzz/work/<target>/
# (ignored by git); the checked-in seeds are in fuzz/corpus/<target>/.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

seconds="${1:-${FUZZ_SECONDS:-20}}"
[ $# -gt 0 ] && shift
# libFuzzer reads -max_total_time=0 as "no limit": refuse it, every run here is bounded.
[[ $seconds =~ ^[0-9]+$ && $seconds -ge 1 ]] || { echo "run.sh: seconds must be >= 1" >&2; exit 2; }
targets=(config deadline_headers routing header_hygiene)
[ $# -gt 0 ] && targets=("$@")
jobs=()
[ "${FUZZ_JOBS:-1}" -gt 1 ] && jobs=(-jobs="$FUZZ_JOBS" -workers="$FUZZ_JOBS")
triple="$(rustc -vV | sed -n 's/^host: //p')"

# What `cargo fuzz build -s none` passes: libFuzzer's coverage instrumentation
# (sanitizer-coverage with inline 8-bit counters, a PC table and comparison tracing) and
# `cfg(fuzzing)`, without any sanitizer, so stable rustc accepts it. `--target` keeps the
# flags off build scripts and proc macros.
export RUSTFLAGS="-Cpasses=sancov-module \
-Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters \
-Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares \
-Cllvm-args=-sanitizer-coverage-stack-depth \
-Cllvm-args=-simplifycfg-branch-fold-threshold=0 \
--cfg fuzzing ${RUSTFLAGS:-}"

echo "== building fuzz targets (${targets[*]})"
cargo build --release --locked --target "$triple" $(printf -- '--bin %s ' "${targets[@]}")
bin_dir="${CARGO_TARGET_DIR:-target}/$triple/release"

for t in "${targets[@]}"; do
  mkdir -p "work/$t" "artifacts/$t"
  echo "== fuzzing $t for ${seconds}s"
  # The first corpus directory receives new inputs; the seeds are read only.
  status=0
  "$bin_dir/$t" "work/$t" "corpus/$t" \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=16384 \
    "${jobs[@]}" -artifact_prefix="artifacts/$t/" -print_final_stats=1 \
    >"work/$t.log" 2>&1 || status=$?
  # libFuzzer prints a status line per new coverage: keep the summary and any report.
  grep -vE '^#[0-9]+\s+(NEW|REDUCE|pulse)' "work/$t.log" | tail -n 40
  if [ "$status" -ne 0 ]; then
    echo "fuzz target $t failed (exit $status); inputs in fuzz/artifacts/$t/:" >&2
    ls -l "artifacts/$t" >&2
    exit 1
  fi
done
echo "== every target ran ${seconds}s without a crash"
echo "fuzz: ${#targets[@]} passed, 0 failed"
