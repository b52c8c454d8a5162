#!/usr/bin/env bash
# CI-only checks of the C ABI that need more than ctest (called from .ci/run after scripts/test.sh):
#  1. ABI baseline: abidiff of build/libdynamo_llm_capi.so against abi/libdynamo_llm_capi.abi
#     (any difference fails; updating the baseline is a deliberate commit: c_tests/ci_checks.sh --update-abi)
#  2. cmake --install, then a downstream project built with find_package(DynamoLLM) and one with pkg-config.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD_DIR:-build}
CMAKE=${CMAKE:-.venv/bin/cmake}
LIB=$BUILD/libdynamo_llm_capi.so
BASELINE=abi/libdynamo_llm_capi.abi

need=()
command -v abidiff >/dev/null || need+=(abigail-tools)
command -v pkg-config >/dev/null || need+=(pkg-config)
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
[ -f "$LIB" ] || { echo "ci_checks: $LIB missing: build first (scripts/setup.sh)"; exit 1; }

if [ "${1:-}" = "--update-abi" ]; then
  abidw --headers-dir include --no-corpus-path --short-locs --drop-undefined-syms --out-file "$BASELINE" "$LIB"
  echo "ci_checks: wrote $BASELINE"
  exit 0
fi

echo "== abidiff against $BASELINE"
abidiff --headers-dir1 include --headers-dir2 include "$BASELINE" "$LIB"
echo "ok: ABI unchanged"

echo "== cmake --install + find_package(DynamoLLM) + pkg-config"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
"$CMAKE" --install "$BUILD" --prefix "$TMP/prefix" >/dev/null
test -f "$TMP/prefix/include/dynamo_llm.h"
test -L "$TMP/prefix/lib/libdynamo_llm_capi.so"
test -f "$TMP/prefix/lib/libdynamo_llm_capi.a"
"$CMAKE" -S c_tests/install_consumer -B "$TMP/consumer" -DCMAKE_PREFIX_PATH="$TMP/prefix" >/dev/null
"$CMAKE" --build "$TMP/consumer" >/dev/null
"$TMP/consumer/consumer"
PKG_CONFIG_PATH="$TMP/prefix/lib/pkgconfig" cc -o "$TMP/pc_consumer" c_tests/install_consumer/main.c \
  $(PKG_CONFIG_PATH="$TMP/prefix/lib/pkgconfig" pkg-config --cflags --libs dynamo_llm)
env -u LD_LIBRARY_PATH "$TMP/pc_consumer" --mock  # the .pc's rpath, no LD_LIBRARY_PATH
echo "ok: install, find_package and pkg-config"
