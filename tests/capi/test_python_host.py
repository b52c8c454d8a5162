"""A Python host of the same version loads the library through ctypes and shares its interpreter
(a host running another Python version is refused: c_tests/test_foreign_python, foreign_python.py)."""
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
LIB = REPO / "build" / "libdynamo_llm_capi.so"

HOST = """
import ctypes, sys
lib = ctypes.CDLL(sys.argv[1])
lib.dynamo_last_error.restype = ctypes.c_char_p
rt, stream = ctypes.c_void_p(), ctypes.c_void_p()
config = b'{"serve_model": false, "mock_endpoint": "test.mock.stream"}'
assert lib.dynamo_runtime_create(config, ctypes.byref(rt)) == 0, lib.dynamo_last_error()
assert lib.dynamo_generate(rt, b"test.mock.stream", b'{"n": 3}', ctypes.byref(stream)) == 0
chunk = (ctypes.c_char * 64)()
statuses = [lib.dynamo_stream_poll(stream, 30000, chunk) for _ in range(4)]
assert statuses == [0, 0, 0, 2], statuses
assert lib.dynamo_stream_free(stream) == 0 and lib.dynamo_runtime_destroy(rt) == 0
print("ok")
"""


@pytest.mark.skipif(not LIB.exists(), reason="the C library is not built (scripts/setup.sh)")
def test_same_version_python_host_shares_its_interpreter():
    run = subprocess.run([sys.executable, "-c", HOST, str(LIB)], capture_output=True, text=True, timeout=120,
                         cwd=REPO)
    assert run.returncode == 0 and run.stdout.strip().endswith("ok"), run.stdout + run.stderr
