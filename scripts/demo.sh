#!/usr/bin/env bash
# The main job: a streamed reply on the embedded default (one process, no broker).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -x build/examples/chat ]; then
  exec build/examples/chat "Hello, who are you?"
fi
exec .venv/bin/python examples/python/hello_world/main.py
