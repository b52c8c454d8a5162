#!/usr/bin/env bash
# The C library under sanitizers (CI; a few minutes on 2 cores). Two parts:
#  1. ASan+UBSan: the library and the threaded/lifecycle/handles/bad-input ctest programs built in
#     $ASAN_BUILD (default build-asan) and run with the embedded interpreter (PYTHONMALLOC=malloc, so
#     ASan sees Python's allocations too; leaks whose stack is inside CPython/cffi are suppressed:
#     c_tests/lsan.supp).
#  2. TSan (and ASan+UBSan) of the stream queue alone: capi/src/streams.c with c_tests/stress_streams.c,
#     a C driver that plays the Python side from a thread (TSan over an embedded CPython reports
#     CPython's own lock-free internals, so the queue is checked without it).
# Usage: c_tests/sanitize.sh [ctest-regex]   (default: the cases below). Needs gcc (libasan, libtsan,
# libubsan come with Debian's gcc); installs it when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BUILD=${ASAN_BUILD:-build-asan}
CMAKE=${CMAKE:-.venv/bin/cmake}
PYTHON=${PYTHON:-.venv/bin/python}
[[ $PYTHON = /* ]] || PYTHON=$ROOT/$PYTHON  # not resolved: the venv's own path is what CMake must see
CASES=${1:-'^(test_threads|test_lifecycle|test_handles|test_bad_input|test_free_vs_poll|test_slot_reuse_wakeup|test_cancel|test_shutdown|test_epoll)$'}
TARGETS=(dynamo_llm_capi test_threads test_lifecycle test_handles test_bad_input test_free_vs_poll
         test_slot_reuse_wakeup test_cancel test_shutdown test_epoll)

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

echo "== ASan+UBSan build of the library and its threaded ctest programs ($BUILD)"
"$CMAKE" -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Debug -DPython3_EXECUTABLE="$PYTHON" \
  -DCMAKE_C_COMPILER="$CC" -DCMAKE_CXX_COMPILER="$CXX" \
  -DCMAKE_C_FLAGS="$SAN -O1" -DCMAKE_CXX_FLAGS="$SAN -O1" \
  -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=address,undefined" -DCMAKE_SHARED_LINKER_FLAGS="-fsanitize=address,undefined" \
  >/dev/null
"$CMAKE" --build "$BUILD" -j"$JOBS" --target "${TARGETS[@]}" >/dev/null
echo "== ASan+UBSan ctest: $CASES"
(cd "$BUILD" && ctest -R "$CASES" --output-on-failure -j1)

echo "== stream queue without Python: TSan, then ASan+UBSan (c_tests/stress_streams.c)"
QUEUE_SRC=(capi/src/streams.c capi/src/chunk_scan.c capi/src/json_check.c c_tests/python_stub.c c_tests/stress_streams.c)
INC=(-Iinclude -Icapi/src -Ic_tests)
"$CC" -std=gnu11 -O1 -g -fsanitize=thread "${INC[@]}" "${QUEUE_SRC[@]}" -o "$BUILD/stress_streams_tsan" -lpthread
"$CC" -std=gnu11 -O1 -g $SAN "${INC[@]}" "${QUEUE_SRC[@]}" -o "$BUILD/stress_streams_asan" -lpthread
TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 timeout 300 "$BUILD/stress_streams_tsan"
timeout 300 "$BUILD/stress_streams_asan"
echo "ok: sanitizers clean"
