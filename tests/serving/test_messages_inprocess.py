"""/v1/messages in-process: the OpenAPI document, streams that fail or pause (a stand-in manager), and tool_choice
enforced on the torch engine, through the official `anthropic` client over an ASGI transport."""
from __future__ import annotations

import json

import pytest

anthropic = pytest.importorskip("anthropic")

TOOLS = [{"name": "get_weather", "description": "Weather in a city",
          "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}]


def test_openapi_documents_the_anthropic_shapes():
    from pyimpl.llm.frontend.http.openapi import OPENAPI_SPEC
    post = OPENAPI_SPEC["paths"]["/v1/messages"]["post"]
    assert post["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/AnthropicMessagesRequest"}
    for status in ("400", "401", "404", "503"):
        assert post["responses"][status]["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/AnthropicErrorResponse"}
    events = post["responses"]["200"]["content"]["text/event-stream"]["itemSchema"]["properties"]["data"]
    refs = {ref["$ref"].rsplit("/", 1)[-1] for ref in events["contentSchema"]["anyOf"]}
    assert {"AnthropicMessageStart", "AnthropicContentBlockDelta", "AnthropicMessageStop", "AnthropicPing",
            "AnthropicErrorResponse"} <= refs
    assert "max_tokens" in OPENAPI_SPEC["components"]["schemas"]["AnthropicMessagesRequest"]["required"]
    # the OpenAI routes keep OpenAI's envelope
    assert OPENAPI_SPEC["paths"]["/v1/chat/completions"]["post"]["responses"]["400"]["content"][
        "application/json"]["schema"] == {"$ref": "#/components/schemas/ErrorResponse"}


class _FailingManager:
    """A manager whose chat stream fails after its first text: what a worker failing mid-answer looks like."""

    models: dict = {}
    aliases: dict = {}

    async def prepare(self, body: dict, kind: str):
        return None, None, None, [1, 2, 3], 5

    def chat_completion_stream(self, body: dict):
        async def chunks():
            from pyimpl.llm.errors import EngineError
            for delta in ({"role": "assistant", "content": ""}, {"content": "partial"}):
                yield {"id": "chatcmpl-1", "choices": [{"index": 0, "delta": delta, "finish_reason": None}]}
            raise EngineError("the engine failed")
        return chunks()


def test_a_stream_failing_midway_ends_with_an_anthropic_error_event():
    from starlette.testclient import TestClient

    from pyimpl.llm.frontend.http.app import OpenAIFrontend
    with TestClient(OpenAIFrontend(manager=_FailingManager()).app()) as http:
        r = http.post("/v1/messages", json={"model": "m", "max_tokens": 5, "stream": True,
                                            "messages": [{"role": "user", "content": "x"}]})
    lines = [line for line in r.text.split("\n") if line]
    names = [line.removeprefix("event: ") for line in lines[0::2]]
    assert names == ["message_start", "content_block_start", "ping", "content_block_delta", "error"]
    assert json.loads(lines[-1].removeprefix("data: ")) == {
        "type": "error", "error": {"type": "api_error", "message": "the engine failed"}}


class _PausingManager(_FailingManager):
    """A manager whose chat stream pauses between its text and its end."""

    def chat_completion_stream(self, body: dict):
        async def chunks():
            import asyncio
            yield {"id": "chatcmpl-1", "choices": [{"index": 0, "delta": {"content": "a"}, "finish_reason": None}]}
            await asyncio.sleep(0.3)
            yield {"id": "chatcmpl-1", "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
        return chunks()


def test_silence_in_a_stream_is_filled_with_ping_events():
    from starlette.testclient import TestClient

    from pyimpl.llm.frontend.http.app import OpenAIFrontend
    with TestClient(OpenAIFrontend(manager=_PausingManager(), keepalive_s=0.05).app()) as http:
        r = http.post("/v1/messages", json={"model": "m", "max_tokens": 5, "stream": True,
                                            "messages": [{"role": "user", "content": "x"}]})
    names = [line.removeprefix("event: ") for line in r.text.split("\n") if line.startswith("event: ")]
    assert names[:4] == ["message_start", "content_block_start", "ping", "content_block_delta"]
    assert names.count("ping") >= 3 and names[-3:] == ["content_block_stop", "message_delta", "message_stop"]


@pytest.fixture
async def torch_client(tiny_model):
    """The anthropic client in-process against a frontend over a torch-engine worker (decoding is constrained)."""
    from pyimpl.llm.backend.model_server import serve_model
    from pyimpl.llm.frontend.http.app import OpenAIFrontend
    from pyimpl.llm.frontend.model_manager import ModelManager
    from pyimpl.runtime import DistributedRuntime
    rt = await DistributedRuntime.create(discovery_backend="mem", request_plane="inproc")
    served = await serve_model(rt, tiny_model, model_name="tiny", engine="torch")
    manager = ModelManager(rt, no_worker_wait_s=0.5)
    await manager.start()
    await manager.wait_for_model("tiny", timeout=30)
    http_lib = pytest.importorskip("httpx2")   # what this anthropic client is built on (older ones: httpx)
    http = http_lib.AsyncClient(transport=http_lib.ASGITransport(app=OpenAIFrontend(manager).app()),
                                base_url="http://t")
    try:
        yield anthropic.AsyncAnthropic(base_url="http://t", api_key="x", http_client=http, max_retries=0)
    finally:
        await http.aclose()
        await manager.stop()
        await served.stop()
        await rt.shutdown()


async def test_any_and_named_tool_choice_always_call_a_tool(torch_client):
    """On the random tiny model only constrained decoding makes these calls: tool_choice is enforced, not a hint."""
    search = {"name": "search", "input_schema": {"type": "object", "additionalProperties": False,
                                                 "required": ["query"],
                                                 "properties": {"query": {"type": "string", "maxLength": 10}}}}
    weather = {"type": "object", "additionalProperties": False, "required": ["city"],
               "properties": {"city": {"type": "string", "maxLength": 10}}}
    tools = [{**TOOLS[0], "input_schema": weather}, search]
    ask = {"model": "tiny", "max_tokens": 120, "tools": tools, "extra_body": {"temperature": 1.0},
           "messages": [{"role": "user", "content": "What is the weather in Paris?"}]}
    for _ in range(2):   # the answer opens with the call; a random model may write more calls until max_tokens
        r = await torch_client.messages.create(**ask, tool_choice={"type": "tool", "name": "search"})
        assert r.content[0].type == "tool_use" and r.content[0].name == "search", r.model_dump()
        assert set(r.content[0].input) == {"query"} and r.stop_reason in ("tool_use", "max_tokens")
        assert {b.name for b in r.content if b.type == "tool_use"} == {"search"}
        r = await torch_client.messages.create(**ask, tool_choice={"type": "any"})
        assert r.content[0].type == "tool_use" and r.stop_reason in ("tool_use", "max_tokens"), r.model_dump()
