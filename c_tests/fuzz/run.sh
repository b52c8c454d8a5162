#!/usr/bin/env bash
# Builds the libFuzzer targets of c_tests/fuzz/ with clang (ASan+UBSan) and runs each for a bounded
# time on a copy of its committed corpus (c_tests/fuzz/corpus/<target>/). A crash, a leak or a failed
# check stops the run with the reproducer saved as $OUT/<target>/crash-*; rerun one input with
# `$OUT/<target>.bin FILE`. Installs clang when missing (CI runs as root).
# Usage: c_tests/fuzz/run.sh [seconds per target, default $FUZZ_SECONDS or 30] [target...]
set -euo pipefail
cd "$(dirname "$0")/../.."
SECONDS_PER=${1:-${FUZZ_SECONDS:-30}}
shift || true
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=(fuzz_json_check fuzz_runtime_config fuzz_chat_request fuzz_generate fuzz_response_array fuzz_c_engine fuzz_responses_create)
OUT=${FUZZ_OUT:-build-fuzz}

if ! command -v clang >/dev/null; then
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq clang >/dev/null
fi
mkdir -p "$OUT"
LIB_SRC=(capi/src/runtime_api.c capi/src/streams.c capi/src/stream_queue.c capi/src/chunk_scan.c capi/src/json_check.c capi/src/outbox.c capi/src/event_queue.c capi/src/kv_events_c.c capi/src/endpoint_serve.c capi/src/responders.c capi/src/responses.c c_tests/python_stub.c)
FLAGS=(-std=gnu11 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
       -Iinclude -Icapi/src -Ic_tests/fuzz)
export ASAN_OPTIONS=detect_leaks=1:halt_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

for t in "${TARGETS[@]}"; do
  echo "== $t: ${SECONDS_PER}s"
  clang "${FLAGS[@]}" "c_tests/fuzz/$t.c" "${LIB_SRC[@]}" -o "$OUT/$t.bin" -lpthread
  work="$OUT/$t"
  rm -rf "$work" && mkdir -p "$work/corpus"
  cp c_tests/fuzz/corpus/"$t"/* "$work/corpus/"
  (cd "$work" && "../$t.bin" -max_total_time="$SECONDS_PER" -max_len=65536 -timeout=10 -rss_limit_mb=2048 \
     -dict=../../c_tests/fuzz/json.dict -print_final_stats=1 corpus 2> log.txt) || {
    tail -60 "$work/log.txt"; echo "fuzz: $t FAILED (reproducer in $work)"; exit 1; }
  grep -E "stat::number_of_executed_units|stat::new_units_added" "$work/log.txt" | tr '\n' ' '; echo
done
echo "ok: every fuzz target ran ${SECONDS_PER}s without a finding"
