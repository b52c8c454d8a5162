"""serve_model + ModelManager in one process (embedded mode: mem discovery, inproc plane), as the C ABI uses them."""
from __future__ import annotations

import asyncio

import pytest

from pyimpl.llm.frontend.aliases import parse_aliases
from pyimpl.llm.errors import InvalidRequestError, ModelNotFoundError, NoWorkerError
from pyimpl.llm.model_card import ModelCard, card_key
from pyimpl.llm.frontend.model_manager import ModelManager
from pyimpl.llm.frontend.prompt_input import JSON_OBJECT_HINT
from pyimpl.llm.backend.model_server import serve_model
from pyimpl.runtime import DistributedRuntime


@pytest.fixture
async def embedded(tiny_model):
    rt = await DistributedRuntime.create(discovery_backend="mem", request_plane="inproc")
    served = await serve_model(rt, tiny_model, model_name="tiny", engine="mock")
    manager = ModelManager(rt, parse_aliases({"short": {"model": "tiny", "max_tokens": 2}}), no_worker_wait_s=0.2)
    await manager.start()
    await manager.wait_for_model("tiny", timeout=10)
    try:
        yield rt, served, manager
    finally:
        await manager.stop()
        await served.stop()
        await rt.shutdown()


async def test_chat_stream_chunks(embedded):
    _, _, manager = embedded
    chunks = [c async for c in manager.chat_completion_stream(
        {"model": "tiny", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4,
         "stream_options": {"include_usage": True}})]
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert chunks[-2]["choices"][0]["finish_reason"] == "length"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == 4


async def test_completion_n_echo_and_alias(embedded):
    _, _, manager = embedded
    whole = await manager.completion({"model": "tiny", "prompt": "abc def ghi", "max_tokens": 3, "n": 2, "echo": True})
    assert [c["index"] for c in whole["choices"]] == [0, 1]
    assert all(c["text"].startswith("abc def ghi") for c in whole["choices"])
    assert whole["usage"]["completion_tokens"] == 6
    short = await manager.completion({"model": "short", "prompt": "abc def ghi"})
    assert short["usage"]["completion_tokens"] == 2 and "short" in manager.model_names()


async def test_json_object_is_a_system_hint(embedded):
    _, _, manager = embedded
    result = await manager.chat_completion({"model": "tiny", "messages": [{"role": "user", "content": "x"}],
                                            "response_format": {"type": "json_object"}, "max_tokens": 60})
    assert JSON_OBJECT_HINT in result["choices"][0]["message"]["content"]  # the mock echoes its prompt
    tools = [{"type": "function", "function": {"name": "lookup"}}]
    result = await manager.chat_completion({"model": "tiny", "messages": [{"role": "user", "content": "x"}],
                                            "tools": tools, "tool_choice": {"type": "function",
                                                                            "function": {"name": "lookup"}},
                                            "max_tokens": 200})
    assert "You must call the function lookup." in result["choices"][0]["message"]["content"]


async def test_typed_errors(embedded):
    rt, _, manager = embedded
    with pytest.raises(InvalidRequestError) as err:
        await manager.chat_completion({"model": "tiny", "messages": []})
    assert err.value.param == "messages"
    with pytest.raises(InvalidRequestError) as err:
        await manager.chat_completion({"model": "tiny", "messages": [{"role": "user", "content": "x"}],
                                       "max_tokens": 10**6})
    assert err.value.param == "max_tokens"
    with pytest.raises(ModelNotFoundError):
        await manager.chat_completion({"model": "nope", "messages": [{"role": "user", "content": "x"}]})
    card = ModelCard(name="ghost", model_path=manager.models["tiny"].card.model_path,
                     endpoint="ghost.backend.generate")
    await rt.discovery.put(card_key("ghost", 1), card.to_dict())
    for _ in range(200):           # known from its card, but no worker: never listed, and a 503
        if "ghost" in manager.models:
            break
        await asyncio.sleep(0.05)
    assert "ghost" not in manager.model_names()
    with pytest.raises(NoWorkerError):
        await manager.chat_completion({"model": "ghost", "messages": [{"role": "user", "content": "x"}]})


async def test_model_gone_after_stop(embedded):
    _, served, manager = embedded
    await served.stop()
    await manager.wait_for_model_gone("tiny", timeout=10)
    assert "tiny" not in manager.model_names()


async def test_outputs_follow_the_wire_types(embedded):
    import msgspec

    from pyimpl.llm.frontend import protocol_types, response_types
    _, _, manager = embedded
    request = {"model": "tiny", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 3,
               "logprobs": True, "top_logprobs": 1}
    msgspec.convert(request, protocol_types.ChatCompletionRequest)
    msgspec.convert(await manager.chat_completion(request), response_types.ChatCompletion)
    async for chunk in manager.chat_completion_stream({**request, "stream_options": {"include_usage": True}}):
        msgspec.convert(chunk, response_types.ChatCompletionChunk)
    msgspec.convert(await manager.completion({"model": "tiny", "prompt": "x y", "max_tokens": 2}), response_types.Completion)
    msgspec.convert(manager.list_models(), response_types.ModelList)
