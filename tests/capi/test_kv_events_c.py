"""Dynamo's C KV-event API end to end: a host loads the library (ctypes), publishes through the C functions,
and a router-side subscriber on the same deployment receives KvEventBatch messages with the blocks hashed as
the router indexes them; a late router gets the stored blocks from the kv_snapshot endpoint.
(Every error path of the C functions: c_tests/test_dynamo_kv_consumer.cpp.)"""
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
LIB = REPO / "build" / "libdynamo_llm_capi.so"

HOST = r"""
import asyncio, ctypes, sys
from ctypes import POINTER, c_char_p, c_size_t, c_uint32, c_uint64
lib = ctypes.CDLL(sys.argv[1])
lib.dynamo_llm_init.argtypes = [c_char_p, c_char_p, c_char_p, c_uint32]
lib.dynamo_kv_event_publish_stored.argtypes = [c_uint64, POINTER(c_uint32), POINTER(c_size_t), POINTER(c_uint64),
                                               c_size_t, POINTER(c_uint64), c_char_p]
lib.dynamo_kv_event_publish_removed.argtypes = [c_uint64, POINTER(c_uint64), c_size_t]
for f in (lib.dynamo_llm_init, lib.dynamo_kv_event_publish_stored, lib.dynamo_kv_event_publish_removed):
    f.restype = c_uint32

import msgspec
from pyimpl.runtime import DistributedRuntime
from pyimpl.llm.engine.block_hash import local_block_hash
from pyimpl.llm.kv_router.protocol import KvEventBatch, decode_batch

tokens = (c_uint32 * 8)(*range(1, 9))
counts, partial = (c_size_t * 2)(4, 4), (c_size_t * 2)(4, 3)
ids, parent = (c_uint64 * 2)(101, 102), (c_uint64 * 1)(100)
h1, h2 = local_block_hash([1, 2, 3, 4]), local_block_hash([5, 6, 7, 8])

async def main():
    rt = await DistributedRuntime.create()  # the DYN_* deployment of the test: mem, in this process
    got = []
    await rt.events.subscribe("test.backend.kv_events", lambda subject, data: got.extend([decode_batch(data)]))
    assert await asyncio.to_thread(lib.dynamo_llm_init, b"test", None, b"generate", 4) == 0
    calls = [lambda: lib.dynamo_kv_event_publish_stored(2, tokens, counts, ids, 2, None, None),
             lambda: lib.dynamo_kv_event_publish_stored(3, tokens, counts, ids, 1, parent, None),
             lambda: lib.dynamo_kv_event_publish_stored(4, tokens, counts, ids, 2, None, b"adapter"),
             lambda: lib.dynamo_kv_event_publish_stored(6, tokens, partial, ids, 2, None, None),
             lambda: lib.dynamo_kv_event_publish_removed(9, (c_uint64 * 1)(102), 1)]
    for call in calls:
        assert call() == 0
    for _ in range(200):
        if sum(len(b.events) for b in got) == 5:
            break
        await asyncio.sleep(0.01)
    events = [e for b in got for e in b.events]
    assert [e.event_id for e in events] == [2, 3, 4, 6, 9], events
    assert {b.worker_id for b in got} == {got[0].worker_id} and got[0].block_size == 4
    stored = [[(b.block_hash, b.tokens_hash) for b in e.blocks] for e in events[:4]]
    assert stored[0] == [(101, h1), (102, h2)] and events[0].parent_hash is None
    assert stored[1] == [(101, h1)] and events[1].parent_hash == 100
    assert [b for b, _ in stored[2]] == [101, 102] and not {h1, h2} & {t for _, t in stored[2]}  # LoRA: own hashes
    assert stored[3] == [(101, h1)]  # the partial block is not published
    assert events[4].kind == "removed" and events[4].block_hashes == [102]
    client = await rt.endpoint("test.backend.kv_snapshot").client()
    await client.wait_for_instances(timeout=5)
    items = [item async for item in await client.generate({}, annotated=False)]
    snapshot = msgspec.convert(items[0], KvEventBatch)
    assert snapshot.worker_id == got[0].worker_id
    assert [(e.parent_hash, [(b.block_hash, b.tokens_hash) for b in e.blocks]) for e in snapshot.events] == \
        [(None, [(101, h1)])]
    assert await asyncio.to_thread(lib.dynamo_llm_shutdown) == 0
    await rt.shutdown()
    print("ok")

asyncio.run(main())
"""


@pytest.mark.skipif(not LIB.exists(), reason="the C library is not built (scripts/setup.sh)")
def test_c_kv_events_reach_a_subscriber_hashed_as_the_router_indexes_them():
    env = clean_env()
    run = subprocess.run([sys.executable, "-c", HOST, str(LIB)], capture_output=True, text=True, timeout=120,
                         cwd=REPO, env=env)
    assert run.returncode == 0 and run.stdout.strip().endswith("ok"), run.stdout + run.stderr


BOUND_HOST = r"""
import asyncio, ctypes, sys
from ctypes import CFUNCTYPE, POINTER, c_char_p, c_size_t, c_uint32, c_uint64, c_void_p
lib = ctypes.CDLL(sys.argv[1])
lib.dynamo_llm_init.argtypes = [c_char_p, c_char_p, c_char_p, c_uint32]
lib.dynamo_kv_event_publish_stored.argtypes = [c_uint64, POINTER(c_uint32), POINTER(c_size_t), POINTER(c_uint64),
                                               c_size_t, POINTER(c_uint64), c_char_p]
HANDLER = CFUNCTYPE(None, c_void_p, c_char_p, c_size_t, c_void_p)
lib.dynamo_endpoint_serve.argtypes = [c_void_p, c_char_p, HANDLER, c_void_p, POINTER(c_void_p)]
lib.dynamo_server_stop.argtypes = [c_void_p]
lib.dynamo_runtime_destroy.argtypes = [c_void_p]
from pyimpl.runtime import DistributedRuntime
from pyimpl.llm.kv_router.protocol import decode_batch

handler = HANDLER(lambda user, request, length, responder: lib.dynamo_responder_finish(c_void_p(responder), None))
tokens, counts, ids = (c_uint32 * 4)(1, 2, 3, 4), (c_size_t * 1)(4), (c_uint64 * 1)(7)

async def first_batch(got, event_id):
    for _ in range(300):  # zmq: the subscriber connects to a new publisher within a watch interval
        assert lib.dynamo_kv_event_publish_stored(event_id, tokens, counts, ids, 1, None, None) == 0
        await asyncio.sleep(0.1)
        if got:
            return got[-1]
    raise AssertionError("no KV event arrived")

async def main():
    rt = await DistributedRuntime.create()  # the file/tcp/zmq deployment of DYN_* in the environment
    got = []
    await rt.events.subscribe("test.backend.kv_events", lambda subject, data: got.append(decode_batch(data)))
    # init before the engine serves its endpoint: events go out as the publisher's own runtime
    assert await asyncio.to_thread(lib.dynamo_llm_init, b"test", None, b"generate", 4) == 0
    # the publisher announced itself at init: once the subscriber had time to connect, the engine's very
    # first event arrives (with zmq it used to bind the socket, too late for that event)
    await asyncio.sleep(1.0)
    assert lib.dynamo_kv_event_publish_stored(1, tokens, counts, ids, 1, None, None) == 0
    for _ in range(100):
        if any(b.events for b in got):
            break
        await asyncio.sleep(0.05)
    first = [b for b in got if b.events]
    assert first and first[0].events[0].event_id == 1, got
    own = first[0].worker_id
    c_rt, server = c_void_p(), c_void_p()
    assert await asyncio.to_thread(lib.dynamo_runtime_create, b"{}", ctypes.byref(c_rt)) == 0
    assert await asyncio.to_thread(lib.dynamo_endpoint_serve, c_rt, b"test.backend.generate", handler, None,
                                   ctypes.byref(server)) == 0
    client = await rt.endpoint("test.backend.generate").client()
    await client.wait_for_instances(timeout=10)
    serving = client.instance_ids()[0]
    assert serving != own
    got.clear()
    # served now: the same publisher speaks as the serving instance, the one the router picks
    assert (await first_batch(got, 2)).worker_id == serving
    assert await asyncio.to_thread(lib.dynamo_server_stop, server) == 0
    got.clear()
    assert (await first_batch(got, 3)).worker_id == own  # the endpoint stopped: back to its own runtime
    assert await asyncio.to_thread(lib.dynamo_llm_shutdown) == 0
    assert await asyncio.to_thread(lib.dynamo_runtime_destroy, c_rt) == 0
    await rt.shutdown()
    print("ok")

asyncio.run(main())
"""


def clean_env(**deployment: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DYN_") and k != "NATS_SERVER"}
    env.update(deployment)
    return env


@pytest.mark.skipif(not LIB.exists(), reason="the C library is not built (scripts/setup.sh)")
@pytest.mark.parametrize("deployment", ["file", "nats"])
def test_c_kv_events_speak_as_the_instance_serving_the_engines_endpoint(tmp_path, deployment, request):
    if deployment == "file":  # events over zmq
        env = clean_env(DYN_DISCOVERY_BACKEND="file", DYN_REQUEST_PLANE="tcp", DYN_FILE_KV=str(tmp_path),
                        DYN_DISCOVERY_TTL="60")  # no key expires on a loaded machine
    else:
        env = clean_env(DYN_DISCOVERY_BACKEND="nats", DYN_REQUEST_PLANE="nats",
                        NATS_SERVER=request.getfixturevalue("nats_server"))
    run = subprocess.run([sys.executable, "-c", BOUND_HOST, str(LIB)], capture_output=True, text=True, timeout=120,
                         cwd=REPO, env=env)
    assert run.returncode == 0 and run.stdout.strip().endswith("ok"), run.stdout + run.stderr


UNREACHABLE_HOST = r"""
import ctypes, sys
lib = ctypes.CDLL(sys.argv[1])
lib.dynamo_llm_init.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_uint32]
lib.dynamo_last_error.restype = ctypes.c_char_p
assert lib.dynamo_llm_init(b"test", None, b"generate", 4) == 1
assert b"cannot connect to NATS" in lib.dynamo_last_error(), lib.dynamo_last_error()
assert lib.dynamo_kv_event_publish_removed(1, None, 0) == 1  # not initialised
print("ok")
"""


@pytest.mark.skipif(not LIB.exists(), reason="the C library is not built (scripts/setup.sh)")
def test_c_kv_init_fails_when_the_deployment_cannot_be_reached():
    env = clean_env(DYN_DISCOVERY_BACKEND="nats", NATS_SERVER="nats://127.0.0.1:9")  # request plane: nats too
    run = subprocess.run([sys.executable, "-c", UNREACHABLE_HOST, str(LIB)], capture_output=True, text=True,
                         timeout=120, cwd=REPO, env=env)
    assert run.returncode == 0 and run.stdout.strip().endswith("ok"), run.stdout + run.stderr
