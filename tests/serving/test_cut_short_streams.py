"""A worker stream that ends before its choice finished (no finish_reason: the worker stopped generating, a
truncated stream) is never a normal end: the chat stream raises NoWorkerError (503 / DYNAMO_ERR_UNAVAILABLE)
instead of ending as if complete, and an embedding host that asked for cancelled_finish first gets a
"cancelled" finish on the last chunk of that choice, with the token ids it had not been handed yet."""
from __future__ import annotations

import pytest

from pyimpl.llm.errors import NoWorkerError
from pyimpl.llm.frontend.model_manager import ModelManager
from pyimpl.llm.model_card import ModelCard, card_key
from pyimpl.runtime import DistributedRuntime

ENDPOINT = "cut.backend.generate"


async def stops_early(request: dict, context=None):
    """A worker handler that sends three tokens and returns without a finish_reason."""
    for token in request["token_ids"][:3]:
        yield {"token_ids": [token], "finish_reason": None}


@pytest.fixture
async def manager(tiny_model):
    rt = await DistributedRuntime.create(discovery_backend="mem", request_plane="inproc")
    await rt.endpoint(ENDPOINT).register(stops_early)
    card = ModelCard(name="cut", model_path=tiny_model, endpoint=ENDPOINT)
    await rt.discovery.put(card_key("cut", rt.instance_id), card.to_dict())
    models = ModelManager(rt, migration_limit=0)
    await models.start()
    await models.wait_for_model("cut", timeout=10)
    try:
        yield models
    finally:
        await models.stop()
        await rt.shutdown()


REQUEST = {"model": "cut", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 20}


async def test_a_truncated_worker_stream_is_an_error_not_an_end(manager):
    chunks = []
    with pytest.raises(NoWorkerError, match="stopped before the response was complete"):
        async for chunk in manager.chat_completion_stream(dict(REQUEST)):
            chunks.append(chunk)
    assert all(c["choices"][0]["finish_reason"] is None for c in chunks)


async def test_an_embedding_host_gets_a_cancelled_finish_first(manager):
    chunks = []
    with pytest.raises(NoWorkerError):
        async for chunk in manager.chat_completion_stream(dict(REQUEST), token_ids=True, cancelled_finish=True):
            chunks.append(chunk)
    last = chunks[-1]["choices"][0]
    assert last["finish_reason"] == "cancelled"
    ids = [t for c in chunks[1:] for t in c["choices"][0].get("token_ids", ())]
    assert len(ids) == 3                          # every id the worker sent, once
