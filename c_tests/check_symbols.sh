#!/bin/sh
# Exported dynamic symbols of the library (argv[1]) == the allow-list (argv[2]).
set -eu
actual=$(nm -D --defined-only "$1" | awk '{print $3}' | sed 's/@.*//' | sort -u)
expected=$(sort -u "$2")
if [ "$actual" != "$expected" ]; then
  echo "exported symbols differ from $2:"
  printf '%s\n' "$actual" > /tmp/dynamo_symbols.$$
  printf '%s\n' "$expected" | diff - /tmp/dynamo_symbols.$$ || true
  rm -f /tmp/dynamo_symbols.$$
  exit 1
fi
echo "ok: $(printf '%s\n' "$actual" | wc -l) symbols"
