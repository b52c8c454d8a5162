"""ResponsesSession in the embedded runtime, no HTTP: an in-process ModelManager over the demo model (torch
engine) and the SDK's MCP server on 127.0.0.1 behind a bearer token; the session lists the server's tools and
runs conversations that call them."""
from __future__ import annotations

import json

import pytest

from pyimpl.llm.responses import (ConversationOptions, McpError, McpServerSpec, ResponsesSession, ToolSelection,
                                  parse_config)

from tests.conftest import torch_manager

from .conftest import mcp_server, stdio_server_entry

OSLO = [{"role": "user", "content": "What is the weather in Oslo?"}]


@pytest.fixture(scope="module")
def weather_url():
    with mcp_server("ok", token="s3cret") as url:
        yield url


@pytest.fixture
async def manager():
    from pyimpl.models import demo_model_path
    async with torch_manager(demo_model_path(), "demo") as manager:
        yield manager


async def test_session_lists_tools_and_runs_a_conversation(manager, weather_url):
    async with ResponsesSession(manager, "demo", timeout_s=10) as session:
        with pytest.raises(McpError):   # the server wants its token
            await session.add_mcp_server("weather", weather_url)
        await session.add_mcp_server("weather", weather_url, auth="s3cret")
        tools = await session.list_available_tools()
        assert {(t["server"], t["name"]) for t in tools} == {("weather", "get_weather"), ("weather", "search")}
        assert tools[0]["input_schema"]["type"] == "object"

        result = await session.run_conversation(OSLO, ConversationOptions(tools=ToolSelection.REQUIRED, temperature=0))
        assert result.status == "completed" and result.final_message
        (call,) = result.tool_calls_made
        assert (call.server, call.name, call.arguments, call.error) == ("weather", "get_weather", {"city": "Oslo"},
                                                                        None)
        assert json.loads(call.output)["condition"] == "sunny"

        result = await session.run_conversation(OSLO, ConversationOptions(tools=ToolSelection.NONE))
        assert result.tool_calls_made == [] and result.final_message

        # only the allowed tools: the required call can only be `search`
        result = await session.run_conversation(
            OSLO, ConversationOptions(tools=ToolSelection.REQUIRED, allowed_tools=["search"], max_turns=2))
        assert [c.name for c in result.tool_calls_made] == ["search"] and result.final_message
        result = await session.run_conversation(OSLO, ConversationOptions(tools=ToolSelection.specific(["search"])))
        assert result.final_message   # a call of another tool is an error the model reads, nothing runs
        assert all(c.name == "search" or (c.output is None and "no MCP tool" in c.error["message"])
                   for c in result.tool_calls_made)
        # one turn: it is the last one, which answers without tools
        result = await session.run_conversation(OSLO, ConversationOptions(tools=ToolSelection.REQUIRED, max_turns=1))
        assert result.tool_calls_made == [] and result.final_message


async def test_session_with_a_stdio_server_and_a_server_that_is_down(manager):
    async with ResponsesSession(manager, "demo", timeout_s=20) as session:
        with pytest.raises(McpError):
            await session.add_mcp_server("down", "http://127.0.0.1:9/mcp")
        spec = parse_config({"mcpServers": {"local": stdio_server_entry()}})["local"]
        await session.add_server(spec)
        result = await session.run_conversation("What is the weather in Tokyo?",
                                                ConversationOptions(tools=ToolSelection.REQUIRED, temperature=0))
        assert [(c.server, c.arguments) for c in result.tool_calls_made] == [("local", {"city": "Tokyo"})]


def test_mcp_config_format():
    specs = parse_config({"mcpServers": {"a": {"command": "x", "args": ["-v"], "env": {"K": "V"}},
                                         "b": {"url": "http://127.0.0.1:1/mcp", "headers": {"H": "v"}}}})
    assert specs["a"] == McpServerSpec("a", command="x", args=("-v",), env={"K": "V"})
    assert specs["b"] == McpServerSpec("b", url="http://127.0.0.1:1/mcp", headers={"H": "v"})
    for bad in ({}, {"mcpServers": {"c": {}}}, {"mcpServers": {"c": {"url": "ftp://x"}}},
                {"mcpServers": {"c": {"command": "x", "url": "http://x"}}},
                {"mcpServers": {"c": {"command": "x", "args": "-v"}}}):
        with pytest.raises(ValueError):
            parse_config(bad)
