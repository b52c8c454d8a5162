"""/v1/responses in process, over fake chat paths: the request's mapping onto the chat path, a failure after the
stream began (response.failed), a client that leaves (the chat stream is closed), keep-alive comments."""
from __future__ import annotations

import asyncio
import json

from pyimpl.llm.errors import EngineError
from pyimpl.llm.frontend.http.app import OpenAIFrontend
from pyimpl.llm.responses import MemoryResponseStore, ResponsesService
from pyimpl.llm.responses.items import chat_request
from pyimpl.llm.responses.types import validate_request

TOOLS = [{"type": "function", "name": "get_weather", "parameters": {"type": "object"}}]


def test_request_maps_onto_the_chat_path():
    req = validate_request({"model": "m", "input": "hi", "instructions": "be terse", "max_output_tokens": 7,
                            "tools": TOOLS, "tool_choice": {"type": "function", "name": "get_weather"},
                            "text": {"format": {"type": "json_schema", "name": "out", "strict": True,
                                                "schema": {"type": "object"}}}})
    body, items = chat_request(req, [])
    assert body["messages"] == [{"role": "system", "content": "be terse"}, {"role": "user", "content": "hi"}]
    assert body["max_tokens"] == 7
    assert body["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    assert body["tools"][0]["function"]["name"] == "get_weather"
    assert body["response_format"] == {"type": "json_schema",
                                       "json_schema": {"name": "out", "schema": {"type": "object"}, "strict": True}}
    assert items == [{"type": "message", "role": "user", "content": "hi"}]


def test_input_items_without_ids_are_not_a_server_error():
    """An mcp_approval_request or mcp_call a client sends back without its id (the schemathesis contract run
    found a 500 here) is replayed or left out, never a KeyError."""
    req = validate_request({"model": "m", "input": [
        {"type": "mcp_approval_request", "server_label": "s", "name": "get_weather", "arguments": "{}"},
        {"type": "mcp_approval_response", "approval_request_id": "mcpr_1", "approve": False},
        {"type": "mcp_call", "server_label": "s", "name": "get_weather", "arguments": "{}", "output": "sunny"},
        {"type": "message", "role": "user", "content": "hi"}]})
    body, _ = chat_request(req, [])
    assert body["messages"][-1] == {"role": "user", "content": "hi"}


class BrokenChat:
    """A chat path that streams some text and then fails (a worker lost for good, an engine error)."""

    def chat_completion_stream(self, request: dict, token_ids: bool = False):
        async def chunks():
            yield {"choices": [{"index": 0, "delta": {"role": "assistant", "content": "Hel"}}]}
            yield {"choices": [{"index": 0, "delta": {"content": "lo"}}]}
            raise EngineError("the engine died")
        return chunks()


def test_a_failure_after_the_stream_began_is_response_failed():
    store = MemoryResponseStore()
    service = ResponsesService(lambda: BrokenChat(), store)

    async def run() -> list[dict]:
        started = await service.start({"model": "m", "input": "hi"})
        return [event async for event in started.events()]
    events = asyncio.run(run())
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    assert [e["type"] for e in events][-4:] == ["response.output_text.done", "response.content_part.done",
                                               "response.output_item.done", "response.failed"]
    failed = events[-1]["response"]
    assert failed["status"] == "failed" and failed["error"]["message"] == "the engine died"
    assert failed["output"][0]["content"][0]["text"] == "Hello" and failed["output"][0]["status"] == "incomplete"
    assert asyncio.run(service.get(failed["id"]))["status"] == "failed"   # stored as it ended


def test_each_event_shows_its_item_as_it_was_then():
    """output_item.added / content_part.added carry the item before any text (the item grows afterwards)."""
    service = ResponsesService(lambda: BrokenChat(), MemoryResponseStore())

    async def run() -> list[dict]:
        return [event async for event in (await service.start({"model": "m", "input": "hi"})).events()]
    events = {e["type"]: e for e in reversed(asyncio.run(run()))}        # the first of each type
    assert events["response.output_item.added"]["item"]["content"] == []
    assert events["response.content_part.added"]["part"]["text"] == ""
    assert events["response.output_item.done"]["item"]["content"][0]["text"] == "Hello"


class EndlessChat:
    """A chat path that never finishes; its clean-up awaits (as telling a worker to stop does)."""

    models: dict = {}
    aliases: dict = {}

    def __init__(self):
        self.closed = False

    def chat_completion_stream(self, request: dict, token_ids: bool = False):
        async def chunks():
            try:
                while True:
                    yield {"choices": [{"index": 0, "delta": {"content": "x"}}]}
                    await asyncio.sleep(0.005)
            finally:
                await asyncio.sleep(0)
                self.closed = True
        return chunks()


def drive(app, body: dict, leave_after: int | None = None) -> list[dict]:
    """POST /v1/responses to the ASGI `app` directly; the client leaves after `leave_after` messages."""
    data = json.dumps(body).encode()
    sent: list[dict] = []

    async def run() -> None:
        gone, requested = asyncio.Event(), []

        async def receive() -> dict:
            if not requested:
                requested.append(True)
                return {"type": "http.request", "body": data, "more_body": False}
            await gone.wait()
            return {"type": "http.disconnect"}

        async def send(message: dict) -> None:
            sent.append(message)
            if leave_after is not None and len(sent) > leave_after:
                gone.set()
        scope = {"type": "http", "method": "POST", "path": "/v1/responses", "root_path": "", "query_string": b"",
                 "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]}
        await asyncio.wait_for(app(scope, receive, send), 10)
    asyncio.run(run())
    return sent


def test_a_client_gone_closes_the_chat_stream():
    chat = EndlessChat()
    sent = drive(OpenAIFrontend(manager=chat).app(), {"model": "m", "input": "hi", "stream": True}, leave_after=20)
    assert sent[0]["status"] == 200 and b"response.output_text.delta" in sent[-1]["body"]
    assert chat.closed


class PausingChat(EndlessChat):
    """Two pieces of text 0.3 s apart."""

    def chat_completion_stream(self, request: dict, token_ids: bool = False):
        async def chunks():
            yield {"choices": [{"index": 0, "delta": {"content": "a"}}]}
            await asyncio.sleep(0.3)
            yield {"choices": [{"index": 0, "delta": {"content": "b"}, "finish_reason": "stop"}]}
        return chunks()


def test_silence_mid_stream_gets_keep_alive_comments():
    sent = drive(OpenAIFrontend(manager=PausingChat(), keepalive_s=0.05).app(),
                 {"model": "m", "input": "hi", "stream": True})
    bodies = [m.get("body", b"") for m in sent[1:]]
    assert bodies.count(b": keep-alive\n\n") >= 3
    assert b"response.completed" in bodies[-2] and sent[-1]["more_body"] is False


def test_every_route_needs_the_api_key():
    from starlette.testclient import TestClient
    with TestClient(OpenAIFrontend(manager=EndlessChat(), api_key="k").app()) as client:
        for method, path in (("POST", "/v1/responses"), ("GET", "/v1/responses/resp_x"),
                             ("DELETE", "/v1/responses/resp_x")):
            reply = client.request(method, path, json={"model": "m", "input": "hi"})
            assert reply.status_code == 401 and reply.json()["error"]["code"] == "invalid_api_key", (method, path)
        reply = client.get("/v1/responses/resp_x", headers={"authorization": "Bearer k"})
        assert reply.status_code == 404 and reply.json()["error"]["code"] == "response_not_found"


def test_the_memory_store_drops_the_oldest_past_its_bounds():
    from pyimpl.llm.responses import StoredResponse

    def record(n: int, size: int) -> StoredResponse:
        return StoredResponse({"id": f"resp_{n}", "created_at": 0}, [{"type": "message", "content": "x" * size}])

    async def run() -> None:
        by_count = MemoryResponseStore(capacity=2)
        for n in range(3):
            await by_count.put(record(n, 10))
        assert await by_count.get("resp_0") is None and await by_count.get("resp_2") is not None
        by_size = MemoryResponseStore(max_bytes=2500)
        for n in range(3):
            await by_size.put(record(n, 1000))
        assert await by_size.get("resp_0") is None and await by_size.get("resp_1") is not None
        assert by_size.bytes <= 2500
        await by_size.delete("resp_1")
        await by_size.delete("resp_2")
        assert by_size.bytes == 0
    asyncio.run(run())
