#!/usr/bin/env bash
# The C library under sanitizers (CI; about 3 minutes on 2 cores). Three parts:
#  1. ASan+UBSan: the library and the threaded/lifecycle/handles/bad-input ctest programs built in
#     $ASAN_BUILD (default build-asan) and run with the embedded interpreter (PYTHONMALLOC=malloc, so
#     ASan sees Python's allocations too; leaks whose stack is inside CPython/cffi/tokenizers are
#     suppressed: c_tests/lsan.supp).
#  2. TSan: the same library and threaded cases built in $TSAN_BUILD (default build-tsan), embedded
#     CPython included (it is quiet under TSan; only torch's OpenMP kernels are suppressed:
#     c_tests/tsan.supp).
#  3. TSan, then ASan+UBSan, of the stream code alone (capi/src/*.c but Python) with c_tests/stress_streams.c,
#     a C driver that plays the Python side from a thread, so the queue meets far more interleavings
#     (pushes of every kind, poll/cancel/free races) than the Python-paced cases give it.
# Usage: c_tests/sanitize.sh [ctest-regex]   (default: the cases below). Needs gcc (libasan, libtsan,
# libubsan come with Debian's gcc); installs it when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BUILD=${ASAN_BUILD:-build-asan}
TSAN_BUILD=${TSAN_BUILD:-build-tsan}
CMAKE=${CMAKE:-.venv/bin/cmake}
PYTHON=${PYTHON:-.venv/bin/python}
[[ $PYTHON = /* ]] || PYTHON=$ROOT/$PYTHON  # not resolved: the venv's own path is what CMake must see
CASES=${1:-'^(test_threads|test_lifecycle|test_handles|test_bad_input|test_free_vs_poll|test_slot_reuse_wakeup|test_cancel|test_shutdown|test_epoll|test_many_streams|test_endpoint_serve|test_dynamo_kv_consumer|test_host_text|test_stream_callback|test_log_callback|test_hosted_models|test_responses)$'}
TARGETS=(dynamo_llm_capi test_threads test_lifecycle test_handles test_bad_input test_free_vs_poll
         test_slot_reuse_wakeup test_cancel test_shutdown test_epoll test_many_streams test_endpoint_serve
         test_dynamo_kv_consumer test_host_text test_stream_callback test_log_callback test_hosted_models
         test_responses)

if ! command -v gcc >/dev/null; then
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gcc g++ >/dev/null
fi
CC=${SAN_CC:-gcc}
CXX=${SAN_CXX:-g++}
JOBS=${JOBS:-2}

SAN="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:halt_on_error=1:detect_stack_use_after_return=0
export LSAN_OPTIONS=suppressions=$ROOT/c_tests/lsan.supp:print_suppressions=0
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export PYTHONMALLOC=malloc

# sanitized_build DIR "COMPILE FLAGS" "LINK FLAGS": the library and the ctest programs of TARGETS
sanitized_build() {
  "$CMAKE" -S . -B "$1" -DCMAKE_BUILD_TYPE=Debug -DPython3_EXECUTABLE="$PYTHON" \
    -DCMAKE_C_COMPILER="$CC" -DCMAKE_CXX_COMPILER="$CXX" -DCMAKE_C_FLAGS="$2 -O1" -DCMAKE_CXX_FLAGS="$2 -O1" \
    -DCMAKE_EXE_LINKER_FLAGS="$3" -DCMAKE_SHARED_LINKER_FLAGS="$3" >/dev/null
  "$CMAKE" --build "$1" -j"$JOBS" --target "${TARGETS[@]}" >/dev/null
}

echo "== ASan+UBSan build of the library and its threaded ctest programs ($BUILD)"
sanitized_build "$BUILD" "$SAN" "-fsanitize=address,undefined"
# ctest_asan: each case of CASES on its own. A case that failed only because LeakSanitizer's own
# stop-the-world tracer crashed at exit ("Tracer caught signal 11 ... LeakSanitizer has encountered a
# fatal error", google/sanitizers#1353: the leak check never ran, no finding was made) runs again, at
# most twice; any sanitizer report or test failure fails at once.
ctest_asan() {
  local names name out tries
  names=$(cd "$BUILD" && ctest -N -R "$CASES" | sed -n 's/^ *Test *#[0-9]*: //p')
  for name in $names; do
    for tries in 1 2 3; do
      if out=$(cd "$BUILD" && ctest -R "^${name}\$" --output-on-failure 2>&1); then
        echo "ok: $name"; break
      fi
      echo "$out"
      if [[ $tries -lt 3 ]] && grep -q 'Tracer caught signal' <<<"$out" \
         && grep -q 'LeakSanitizer has encountered a fatal error' <<<"$out" \
         && ! grep -qE 'ERROR: (AddressSanitizer|LeakSanitizer: detected)|runtime error:|SUMMARY:' <<<"$out"; then
        echo "== $name: LeakSanitizer's tracer crashed (no leak check ran); running it again"
        continue
      fi
      return 1
    done
  done
}
echo "== ASan+UBSan ctest: $CASES"
ctest_asan

echo "== TSan build of the library and its threaded ctest programs ($TSAN_BUILD)"
sanitized_build "$TSAN_BUILD" "-fsanitize=thread" "-fsanitize=thread"
echo "== TSan ctest: $CASES"
(cd "$TSAN_BUILD" && env -u ASAN_OPTIONS -u LSAN_OPTIONS -u PYTHONMALLOC \
   TSAN_OPTIONS="halt_on_error=1:suppressions=$ROOT/c_tests/tsan.supp" ctest -R "$CASES" --output-on-failure -j1)

echo "== stream queue without Python: TSan, then ASan+UBSan (c_tests/stress_streams.c)"
QUEUE_SRC=(capi/src/runtime_api.c capi/src/streams.c capi/src/stream_queue.c capi/src/chunk_scan.c capi/src/json_check.c capi/src/outbox.c capi/src/event_queue.c capi/src/kv_events_c.c capi/src/endpoint_serve.c capi/src/responders.c c_tests/python_stub.c c_tests/stress_streams.c)
INC=(-Iinclude -Icapi/src -Ic_tests)
"$CC" -std=gnu11 -O1 -g -fsanitize=thread "${INC[@]}" "${QUEUE_SRC[@]}" -o "$BUILD/stress_streams_tsan" -lpthread
"$CC" -std=gnu11 -O1 -g $SAN "${INC[@]}" "${QUEUE_SRC[@]}" -o "$BUILD/stress_streams_asan" -lpthread
TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 timeout 300 "$BUILD/stress_streams_tsan"
timeout 300 "$BUILD/stress_streams_asan"
echo "ok: sanitizers clean"
