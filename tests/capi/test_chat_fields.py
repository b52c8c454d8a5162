"""What a C host reads from a chat stream besides the JSON, through the C ABI's Python seam (RuntimeSession
chunks as chat_batch hands them to C): every token id of the reply on the chunk whose delta it made (none
lost, none twice), and FINISH_CANCELLED on the last chunk of each choice the serving side aborted, followed
by DYNAMO_ERR_UNAVAILABLE (never a normal end)."""
from __future__ import annotations

import json

import pytest

from pyimpl.capi.chunks import chat_batch
from pyimpl.capi.config import parse_config
from pyimpl.capi.session import RuntimeSession
from pyimpl.capi.status import ERR_UNAVAILABLE, FINISH_CANCELLED, FINISH_LENGTH, FINISH_NONE, status_of
from pyimpl.models import tiny_model_path


async def start(engine: str, **extra) -> RuntimeSession:
    config = {"model": str(tiny_model_path()), "model_name": "tiny", "engine": engine, **extra}
    return await RuntimeSession.start(parse_config(json.dumps(config)))


def chat(n: int = 1, max_tokens: int = 12) -> dict:
    return {"messages": [{"role": "user", "content": "Hello there"}], "max_tokens": max_tokens,
            "ignore_eos": True, "n": n, "temperature": 1.0}


@pytest.mark.parametrize("n", [1, 3])
async def test_chat_chunks_carry_every_token_id_once(n):
    session = await start("mock")
    try:
        items = [item async for item in session.chat(chat(n))]
    finally:
        await session.close()
    ids: dict[int, list[int]] = {i: [] for i in range(n)}
    texts: dict[int, str] = {i: "" for i in range(n)}
    for data, text, token_ids, finish, choice in chat_batch(items).fields():
        delta = json.loads(data)["choices"][0]
        assert (token_ids or []) == delta.get("token_ids", [])     # the C fields are the JSON's
        if token_ids:
            ids[choice] += token_ids
            assert text is not None or finish != FINISH_NONE       # ids travel with the text they made
        texts[choice] += (text or b"").decode()
    from transformers import AutoTokenizer
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_path())
    for choice in range(n):
        assert len(ids[choice]) == 12
        assert tokenizer.decode(ids[choice], skip_special_tokens=True) == texts[choice]


async def test_the_last_chunk_of_an_aborted_choice_is_cancelled():
    session = await start("torch", migration_limit=0)   # one worker: nowhere to migrate anyway
    fields, error = [], None
    try:
        async for item in session.chat(chat(n=2, max_tokens=1000)):
            fields += chat_batch([item]).fields()
            if len(fields) == 4:
                await session.served.engine.shutdown()   # the engine aborts its running requests
    except Exception as exc:
        error = exc
    finally:
        await session.close()
    assert error is not None and status_of(error) == ERR_UNAVAILABLE
    assert "stopped before the response was complete" in str(error)
    last = {}
    for _, _, _, finish, choice in fields:
        assert choice not in last or last[choice] == FINISH_NONE   # nothing after a choice's finish
        last[choice] = finish
    assert last == {0: FINISH_CANCELLED, 1: FINISH_CANCELLED}
    assert FINISH_LENGTH not in last.values()
