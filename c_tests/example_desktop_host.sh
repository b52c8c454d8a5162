#!/usr/bin/env bash
# examples/c/desktop_host with the demo and tiny models: both answer, the state callback reports the swap
# (a loaded, then unloaded for b, then back), never two loaded at once.
#   example_desktop_host.sh PYTHON DESKTOP_HOST_EXE
set -euo pipefail
PY=$1 EXE=$2
A=$("$PY" -c 'from pyimpl.models import demo_model_path; print(demo_model_path())')
B=$("$PY" -c 'from pyimpl.models import tiny_model_path; print(tiny_model_path())')
OUT=$("$EXE" "$A" "$B" "Hello!")
echo "$OUT"
[ "$(echo "$OUT" | grep -c '^\[reply\]')" = 3 ]
echo "$OUT" | grep -q '^\[state\] a: unloaded$'
echo "$OUT" | grep -q '^\[state\] b: loaded$'
# states in order: a loads, a unloads before b loads, b unloads before a loads again
[ "$(echo "$OUT" | grep '^\[state\]' | tr '\n' '|')" = \
  "[state] a: loading|[state] a: loaded|[state] a: unloading|[state] a: unloaded|[state] b: loading|[state] b: loaded|[state] b: unloading|[state] b: unloaded|[state] a: loading|[state] a: loaded|" ]
