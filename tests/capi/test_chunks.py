"""Chunk fields handed to C: JSON bytes, text delta, token ids and DYNAMO_FINISH_* codes."""
import ctypes
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from pyimpl.capi.chunks import chat_batch, chat_chunks, endpoint_chunk
from pyimpl.capi.status import FINISH_CANCELLED, FINISH_LENGTH, FINISH_NONE, FINISH_STOP

REPO = Path(__file__).resolve().parents[2]


def test_chat_chunk_carries_the_content_delta_and_finish():
    item = {"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"content": "héllo"},
                                                              "finish_reason": None}]}
    [(data, text, ids, finish, choice)] = chat_chunks(item)
    assert json.loads(data) == item and text == "héllo".encode() and ids is None and finish == FINISH_NONE
    assert choice == 0
    last = {"choices": [{"index": 0, "delta": {}, "finish_reason": "length"}]}
    assert [c[1:] for c in chat_chunks(last)] == [(None, None, FINISH_LENGTH, 0)]
    usage_only = {"choices": [], "usage": {"total_tokens": 3}}
    assert [c[1:] for c in chat_chunks(usage_only)] == [(None, None, FINISH_NONE, -1)]  # no choice


def test_n_choices_become_one_chunk_per_choice_with_its_index_and_own_finish():
    """n > 1: a chunk holding several choices (the role chunk) is split; each C chunk has one choice."""
    first = {"id": "x", "choices": [{"index": i, "delta": {"role": "assistant", "content": ""},
                                     "finish_reason": None} for i in range(3)]}
    split = chat_chunks(first)
    assert [c[4] for c in split] == [0, 1, 2]
    assert [json.loads(c[0])["choices"][0]["index"] for c in split] == [0, 1, 2]
    assert all(len(json.loads(c[0])["choices"]) == 1 and json.loads(c[0])["id"] == "x" for c in split)
    items = [first, {"choices": [{"index": 2, "delta": {"content": "b"}, "finish_reason": None}]},
             {"choices": [{"index": 1, "delta": {}, "finish_reason": "stop"}]}]
    fields = list(chat_batch(items).fields())
    assert [(f[1], f[3], f[4]) for f in fields] == [(b"", FINISH_NONE, 0), (b"", FINISH_NONE, 1),
                                                   (b"", FINISH_NONE, 2), (b"b", FINISH_NONE, 2),
                                                   (None, FINISH_STOP, 1)]


def test_endpoint_chunk_takes_token_ids_and_finish_reason():
    data, text, ids, finish = endpoint_chunk({"token_ids": [1, 2], "finish_reason": "stop"})
    assert json.loads(data)["token_ids"] == [1, 2] and text is None and ids == [1, 2] and finish == FINISH_STOP
    assert endpoint_chunk({"token_ids": [3], "finish_reason": "abort"})[3] == FINISH_CANCELLED
    assert endpoint_chunk("plain")[0] == b'"plain"'
    assert endpoint_chunk({"token_ids": "nope"})[2] is None


def test_c_reads_endpoint_array_elements_as_endpoint_chunk_does(chunk_scan):
    """capi/src/chunk_scan.c splits endpoint_array's JSON and reads the fields endpoint_chunk would."""
    from pyimpl.capi.chunks import endpoint_array
    items = [{"token_ids": [4, 4294967295], "finish_reason": "length"}, {"x": 1}, [1, 2], "s", 7, None,
             {"token_ids": []}, {"token_ids": "nope", "finish_reason": "stop"}, {"nested": {"token_ids": [9]}},
             {"text": "a \\\"quoted\\\" ] } , [ {", "token_ids": [7], "finish_reason": None},
             {"finish_reason": "abort"}, {"finish_reason": "eos"}, {"finish_reason": "weird"}, {"finish_reason": ""},
             {"finish_reason": 0}, {"finish_reason": 3}, {"token_ids": [1, 2], "token_ids2": [5]}]
    expected = [(data, ids or None, finish) for data, _, ids, finish in map(endpoint_chunk, items)]
    assert chunk_scan(endpoint_array(items)) == expected
    assert chunk_scan(endpoint_array([])) == []
    assert chunk_scan(b'[{"token_ids":[1.5, -2]}]') == [(b'{"token_ids":[1.5, -2]}', None, FINISH_NONE)]
    # an empty element or value (found by c_tests/fuzz/fuzz_response_array) is malformed too
    for bad in (b"", b"{}", b'[{"a":1}', b'[{"a":"x]', b'[1 2]', b'[{"a" 1}]', b"[,", b"[1,,2]", b'[{"a":}]'):
        assert chunk_scan(bad) is None, bad


@pytest.fixture(scope="module")
def chunk_scan(tmp_path_factory):
    """chunk_scan.c built on its own, driven through ctypes: blob -> [(json, ids, finish)] or None."""
    cc = shutil.which(os.environ.get("CC", "cc"))
    assert cc is not None, "the C ABI needs a C compiler (cc or $CC)"
    lib_path = tmp_path_factory.mktemp("scan") / "libscan.so"
    subprocess.run([cc, "-O1", "-shared", "-fPIC", f"-I{REPO / 'include'}", f"-I{REPO / 'capi/src'}",
                    str(REPO / "capi/src/chunk_scan.c"), "-o", str(lib_path)], check=True)
    lib = ctypes.CDLL(str(lib_path))

    class Item(ctypes.Structure):
        _fields_ = [("json", ctypes.c_void_p), ("json_len", ctypes.c_size_t), ("token_ids", ctypes.POINTER(ctypes.c_uint32)),
                    ("num_token_ids", ctypes.c_size_t), ("finish_reason", ctypes.c_int32)]

    class Scan(ctypes.Structure):
        _fields_ = [("p", ctypes.c_void_p), ("end", ctypes.c_void_p), ("item", Item),
                    ("ids", ctypes.c_void_p), ("ids_cap", ctypes.c_size_t)]

    def scan(blob: bytes):
        buf = ctypes.create_string_buffer(blob, len(blob))
        state, out = Scan(), []
        try:
            if not lib.dyn_scan_begin(ctypes.byref(state), buf, ctypes.c_size_t(len(blob))):
                return None
            while (more := lib.dyn_scan_next(ctypes.byref(state))) == 1:
                it = state.item
                ids = [it.token_ids[i] for i in range(it.num_token_ids)] or None
                out.append((ctypes.string_at(it.json, it.json_len), ids, it.finish_reason))
            return out if more == 0 else None
        finally:
            lib.dyn_scan_end(ctypes.byref(state))
    return scan
