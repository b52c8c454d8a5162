"""The C ABI's chat path migrates like HTTP's: a C runtime config's migration_limit reaches the frontend, so a
chat stream whose worker is SIGKILLed mid-stream continues on the other worker to its full length (every token
id, one LENGTH finish), while with "migration_limit": 0 the same loss ends the stream with a FINISH_CANCELLED
chunk, then DYNAMO_ERR_UNAVAILABLE.
Through RuntimeSession and chat_batch, the Python seam of dynamo_chat_completion, against real worker processes."""
from __future__ import annotations

import asyncio
import json

from pyimpl.capi.chunks import chat_batch
from pyimpl.capi.config import parse_config
from pyimpl.capi.session import RuntimeSession
from pyimpl.capi.status import ERR_UNAVAILABLE, FINISH_CANCELLED, FINISH_LENGTH, FINISH_NONE, status_of

from .conftest import start_worker

MAX_TOKENS = 800  # ~8 s of mock steps: the kill must land mid-stream even when a worker start is slow under load
WORKER = ("--model-name", "tiny", "--engine", "mock", "--mock-step-delay-s", "0.01")


async def join(env: dict, migration_limit: int) -> RuntimeSession:
    config = {"discovery": "file", "request_plane": "tcp", "file_kv_dir": env["DYN_FILE_KV"],
              "migration_limit": migration_limit}
    session = await RuntimeSession.start(parse_config(json.dumps(config)))
    await session.models.wait_for_model("tiny", timeout=30)
    return session


async def read(stream, fields: list, started: asyncio.Event) -> BaseException | None:
    """Collect a chat stream's C chunk fields; the error that ended it, if any."""
    try:
        async for item in stream:
            fields += chat_batch([item]).fields()
            if sum(len(f[2] or ()) for f in fields) >= 10:
                started.set()
    except Exception as exc:
        return exc
    finally:
        started.set()
    return None


async def test_a_c_chat_stream_migrates_unless_its_limit_is_0(serving_env, tiny_model):
    first = start_worker(serving_env, tiny_model, *WORKER)
    second = None
    sessions = [await join(serving_env, 3), await join(serving_env, 0)]
    try:
        request = {"messages": [{"role": "user", "content": "count with me"}], "max_tokens": MAX_TOKENS,
                   "ignore_eos": True}
        fields: list[list] = [[], []]
        started = [asyncio.Event(), asyncio.Event()]
        readers = [asyncio.create_task(read(s.chat(dict(request)), f, e))
                   for s, f, e in zip(sessions, fields, started)]
        for event in started:
            await event.wait()          # both streams run on the first worker (the only one)
        second = start_worker(serving_env, tiny_model, *WORKER)
        client = await sessions[0].runtime.endpoint("dynamo.backend.generate").client()
        for _ in range(300):
            if len(client.instance_ids()) == 2:
                break
            await asyncio.sleep(0.05)
        first.kill()
        migrated, unmigrated = await asyncio.wait_for(asyncio.gather(*readers), 60)
    finally:
        for session in sessions:
            await session.close()
        first.kill()
        if second is not None:
            second.stop()
    assert migrated is None, migrated
    ids = [t for f in fields[0] for t in (f[2] or ())]
    finishes = [f[3] for f in fields[0] if f[3] != FINISH_NONE]
    assert len(ids) == MAX_TOKENS and finishes == [FINISH_LENGTH]
    assert unmigrated is not None and status_of(unmigrated) == ERR_UNAVAILABLE
    assert 10 <= sum(len(f[2] or ()) for f in fields[1]) < MAX_TOKENS
    assert [f[3] for f in fields[1] if f[3] != FINISH_NONE] == [FINISH_CANCELLED]   # the last chunk's
    assert fields[1][-1][3] == FINISH_CANCELLED
