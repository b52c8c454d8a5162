#!/usr/bin/env bash
# Runs every test: pytest for the Python side, ctest for the C ABI.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"
.venv/bin/python -m pytest -q -p no:cacheprovider "$@"
if [ -f build/CTestTestfile.cmake ]; then
  (cd build && ctest --output-on-failure -j2)
fi
