"""The agent loop's limits and bookkeeping over a scripted chat path (no model): the SDK's MCP server on
127.0.0.1 runs the calls. A model that always calls stops at max_tool_calls / max_turns and then answers;
parallel calls in one turn all run; usage adds up the turns; a client function tool ends the response; a
connection whose server restarted is opened again."""
from __future__ import annotations

import json

import pytest

from pyimpl.llm.responses import McpClient, McpServers, McpServerSpec, MemoryResponseStore, ResponsesService

from .conftest import free_port, mcp_server

USAGE = {"prompt_tokens": 10, "completion_tokens": 3, "total_tokens": 13}


class CallingChat:
    """Calls get_weather (`calls` per turn, plus `also` named tools) unless tool_choice is "none"; records bodies."""

    def __init__(self, calls: int = 1, also: tuple[str, ...] = ()):
        self.calls, self.also, self.bodies = calls, also, []

    def chat_completion_stream(self, request: dict, token_ids: bool = False):
        self.bodies.append(request)

        async def chunks():
            if request.get("tool_choice") == "none":
                yield {"choices": [{"index": 0, "delta": {"role": "assistant", "content": "Done."}}]}
            else:
                names = ["get_weather"] * self.calls + list(self.also)
                for i, name in enumerate(names):
                    yield {"choices": [{"index": 0, "delta": {"tool_calls": [{
                        "index": i, "id": f"c{i}", "type": "function",
                        "function": {"name": name, "arguments": '{"city": '}}]}}]}
                    yield {"choices": [{"index": 0, "delta": {"tool_calls": [{
                        "index": i, "function": {"arguments": f'"City{i}"}}'}}]}}]}
            yield {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}], "usage": USAGE}
        return chunks()


@pytest.fixture(scope="module")
def url():
    with mcp_server("ok") as url:
        yield url


def body(url: str, **extra) -> dict:
    return {"model": "m", "input": "weather?", "tools": [{"type": "mcp", "server_label": "w", "server_url": url,
                                                          "require_approval": "never"}], **extra}


async def test_max_tool_calls_then_the_model_answers(url):
    chat = CallingChat()
    service = ResponsesService(lambda: chat, MemoryResponseStore(), McpServers(timeout_s=10))
    secret = {"authorization": "tok", "headers": {"X-Key": "k"}}
    r = await service.create(body(url, max_tool_calls=2, tools=[{**body(url)["tools"][0], **secret}]))
    assert "authorization" not in r["tools"][0] and r["tools"][0]["headers"] == {"X-Key": "<redacted>"}
    assert [i["type"] for i in r["output"]] == ["mcp_list_tools", "mcp_call", "mcp_call", "message"]
    assert [b.get("tool_choice") for b in chat.bodies] == [None, "auto", "none"]
    # the third turn saw both calls and their results
    tool_messages = [m for m in chat.bodies[-1]["messages"] if m["role"] == "tool"]
    assert [json.loads(m["content"])["city"] for m in tool_messages] == ["City0", "City0"]
    assert r["usage"]["input_tokens"] == 30 and r["usage"]["output_tokens"] == 9   # three turns
    await service.mcp.aclose()


async def test_max_turns_parallel_calls_and_a_client_function_tool(url):
    chat = CallingChat(calls=2)
    service = ResponsesService(lambda: chat, MemoryResponseStore(), McpServers(timeout_s=10), max_turns=2)
    r = await service.create(body(url))
    calls = [i for i in r["output"] if i["type"] == "mcp_call"]
    assert [json.loads(c["arguments"])["city"] for c in calls] == ["City0", "City1"]   # both ran
    assert len(chat.bodies) == 2 and r["output"][-1]["type"] == "message"
    # a call of the client's own function tool ends the response (the MCP call of that turn runs after it)
    chat = CallingChat(also=("lookup",))
    service.chat = lambda: chat
    tools = body(url)["tools"] + [{"type": "function", "name": "lookup", "parameters": {"type": "object"}}]
    r = await service.create(body(url, tools=tools))
    assert [i["type"] for i in r["output"]] == ["mcp_list_tools", "function_call", "mcp_call"]
    assert len(chat.bodies) == 1
    await service.mcp.aclose()


async def test_a_connection_is_opened_again_after_the_server_restarted():
    port = free_port()
    client = McpClient(McpServerSpec("w", url=f"http://127.0.0.1:{port}/mcp"), timeout_s=5)
    with mcp_server("ok", port=port):
        assert (await client.call_tool("get_weather", {"city": "Oslo"})).output
    with mcp_server("ok", port=port):   # a new server process: the old session is gone
        assert json.loads((await client.call_tool("get_weather", {"city": "Rome"})).output)["city"] == "Rome"
    down = await client.call_tool("get_weather", {"city": "Oslo"})   # an error (at the latest at the timeout)
    assert down.output is None and down.error["type"] in ("http_error", "mcp_protocol_error")
    with mcp_server("ok", port=port):   # and back: a new session
        assert (await client.call_tool("get_weather", {"city": "Lima"})).output
    await client.aclose()
