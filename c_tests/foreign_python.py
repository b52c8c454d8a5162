"""Run by another CPython version (e.g. pyenv's python3.12): loading the library through ctypes and
creating a runtime fails at once with DYNAMO_ERR_PYTHON_INIT naming both versions (it used to spin).
    python3.X foreign_python.py LIBDYNAMO"""
import ctypes
import sys

lib = ctypes.CDLL(sys.argv[1])
lib.dynamo_last_error.restype = ctypes.c_char_p
rt = ctypes.c_void_p()
status = lib.dynamo_runtime_create(b'{"serve_model": false}', ctypes.byref(rt))
message = lib.dynamo_last_error().decode()
print(status, message)
assert status == -10, status
assert f"already runs Python {sys.version.split()[0]}" in message, message
print("ok")
