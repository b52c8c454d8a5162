#!/usr/bin/env bash
# Distributed mode from C: a NATS server and a worker process (mock engine, tiny model) run
# elsewhere; the C example joins with {"discovery": "nats", ...} and streams a chat reply.
#   test_distributed.sh PYTHON CHAT_EXE REPO_ROOT
set -euo pipefail
PY=$1 CHAT=$2 ROOT=$3
BIN=$(dirname "$PY")
WORK=$(mktemp -d)
PORT=$((20000 + RANDOM % 20000))
cleanup() {
  [ -n "${WORKER:-}" ] && kill "$WORKER" 2>/dev/null && wait "$WORKER" 2>/dev/null
  [ -n "${NATS:-}" ] && kill "$NATS" 2>/dev/null && wait "$NATS" 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT
"$BIN/nats-server" -js -sd "$WORK/js" -a 127.0.0.1 -p "$PORT" >"$WORK/nats.log" 2>&1 &
NATS=$!
URL="nats://127.0.0.1:$PORT"
MODEL=$(PYTHONPATH="$ROOT" "$PY" -c 'from pyimpl.models import tiny_model_path; print(tiny_model_path())')
export PYTHONPATH="$ROOT"
DYN_DISCOVERY_BACKEND=nats DYN_REQUEST_PLANE=nats NATS_SERVER="$URL" \
  "$PY" -m pyimpl.worker --model "$MODEL" --model-name tiny --engine mock >"$WORK/worker.log" 2>&1 &
WORKER=$!
for _ in $(seq 300); do grep -q "worker ready" "$WORK/worker.log" && break; sleep 0.1; done
grep -q "worker ready" "$WORK/worker.log" || { cat "$WORK/worker.log"; exit 1; }
unset PYTHONPATH
OUT=$(DYNAMO_LLM_CONFIG="{\"discovery\": \"nats\", \"nats_url\": \"$URL\", \"request_plane\": \"nats\"}" \
      "$CHAT" "hello from C" 16)
echo "reply: $OUT"
[ -n "$OUT" ]
