#!/usr/bin/env bash
# The HTTP API's property-based contract test (schemathesis against the frontend's own /openapi.json, with a
# mock worker), for CI and by hand: scripts/api_contract.sh [--duration SECONDS] [--seeds A,B] ...
# Starts and stops its own processes (free ports, file discovery in a temp dir); a hard timeout bounds it.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-.venv/bin/python}"
[ -x "$PY" ] || PY=python3
duration=150
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
  [ "${args[$i]}" = "--duration" ] && duration="${args[$((i + 1))]}"
done
if ! "$PY" -c "import schemathesis" 2>/dev/null; then
  "$PY" -m pip install -q "schemathesis>=4.32"
fi
hard_limit=$(( ${duration%.*} + 420 ))  # servers' start-up, schemathesis' own set-up per seed, shutdown
exec timeout --kill-after=30 "$hard_limit" "$PY" -m pyimpl.bench api-contract "$@"
