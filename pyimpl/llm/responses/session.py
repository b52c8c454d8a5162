"""ResponsesSession: the library API of an agent with MCP tools (candle-vllm's seed), for Python hosts in the
embedded runtime without HTTP: add MCP servers, list their tools, run a conversation whose tool calls the
session executes. It runs on ResponsesService (the same agent loop as /v1/responses' `mcp` tools) over any
ChatStreamer, e.g. an in-process ModelManager."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import ClassVar, Iterable

from pyimpl.llm.responses.mcp_client import DEFAULT_TIMEOUT_S
from pyimpl.llm.responses.mcp_config import McpServerSpec
from pyimpl.llm.responses.mcp_tools import McpServers
from pyimpl.llm.responses.service import ChatStreamer, ResponsesService
from pyimpl.llm.responses.store import MemoryResponseStore


@dataclass(frozen=True)
class ToolSelection:
    """Which tools the model gets: AUTO (it decides), REQUIRED (it must call one first), NONE (no tools), or
    ToolSelection.specific([...]) (only the named tools, it decides)."""

    mode: str
    names: tuple[str, ...] = ()
    AUTO: ClassVar[ToolSelection]
    REQUIRED: ClassVar[ToolSelection]
    NONE: ClassVar[ToolSelection]

    @staticmethod
    def specific(names: Iterable[str]) -> ToolSelection:
        return ToolSelection("specific", tuple(names))


ToolSelection.AUTO = ToolSelection("auto")
ToolSelection.REQUIRED = ToolSelection("required")
ToolSelection.NONE = ToolSelection("none")


@dataclass(frozen=True)
class ConversationOptions:
    """`max_turns`: model turns at most (the last one answers without tools); `allowed_tools`: tool names the
    model may call (None: all); `temperature`: the model's sampling temperature (None: the API's default, 1)."""

    tools: ToolSelection = ToolSelection.AUTO
    max_turns: int = 10
    allowed_tools: list[str] | None = None
    temperature: float | None = None


@dataclass
class ToolCall:
    """One tool call the session ran: its server, arguments, and output or error."""

    server: str
    name: str
    arguments: dict
    output: str | None = None
    error: dict | None = None


@dataclass
class ConversationResult:
    """The model's final message, the tool calls made on the way, and the whole Responses object."""

    final_message: str
    tool_calls_made: list[ToolCall] = field(default_factory=list)
    status: str = "completed"
    response: dict = field(default_factory=dict)


def _input(messages: list[dict] | str) -> list[dict] | str:
    """Chat-style messages ({"role", "content"}) as Responses message items."""
    if isinstance(messages, str):
        return messages
    return [{"type": "message", "role": m["role"], "content": m["content"]} for m in messages]


def _result(response: dict) -> ConversationResult:
    messages = [item for item in response["output"] if item["type"] == "message"]
    final = "".join(part.get("text", "") for part in messages[-1]["content"]) if messages else ""
    calls = [ToolCall(item["server_label"], item["name"], json.loads(item["arguments"] or "{}"),
                      item.get("output"), item.get("error"))
             for item in response["output"] if item["type"] == "mcp_call"]
    return ConversationResult(final, calls, response["status"], response)


class ResponsesSession:
    """An agent session over `chat` (a ChatStreamer: the in-process ModelManager) serving `model`; MCP calls
    are bounded by `timeout_s` (a failing, hanging or down server gives the model an error, never a hang)."""

    def __init__(self, chat: ChatStreamer, model: str, *, timeout_s: float = DEFAULT_TIMEOUT_S,
                 instructions: str | None = None):
        self.model, self.instructions = model, instructions
        self.servers = McpServers(timeout_s=timeout_s)
        self.service = ResponsesService(lambda: chat, MemoryResponseStore(), self.servers)

    async def add_mcp_server(self, name: str, url: str, auth: str | None = None) -> None:
        """Connect to the Streamable HTTP MCP server at `url` (`auth`: a bearer token, or a whole Authorization
        value) and list its tools; McpError when it cannot be reached."""
        headers = {"Authorization": auth if auth.lower().startswith(("bearer ", "basic ")) else f"Bearer {auth}"} \
            if auth else {}
        await self.add_server(McpServerSpec(name, url=url, headers=headers))

    async def add_server(self, spec: McpServerSpec) -> None:
        """Any MCP server (an HTTP URL or a stdio command, as in an --mcp-config file)."""
        await self.servers.client(spec).list_tools()
        self.servers.configured[spec.name] = spec

    async def list_available_tools(self) -> list[dict]:
        """Every tool of every added server: {"server", "name", "description", "input_schema"}."""
        tools = []
        for name, spec in self.servers.configured.items():
            tools += [{"server": name, **info.as_item()} for info in await self.servers.client(spec).list_tools()]
        return tools

    async def run_conversation(self, messages: list[dict] | str,
                               options: ConversationOptions | None = None) -> ConversationResult:
        """Run the conversation to the model's final answer, executing its tool calls (no approvals asked)."""
        options = options or ConversationOptions()
        selection = options.tools
        allowed = None if options.allowed_tools is None else set(options.allowed_tools)
        if selection.mode == "specific":
            allowed = set(selection.names) if allowed is None else allowed & set(selection.names)
        body: dict = {"model": self.model, "input": _input(messages), "store": False}
        if options.temperature is not None:
            body["temperature"] = options.temperature
        if self.instructions:
            body["instructions"] = self.instructions
        if selection.mode != "none" and self.servers.configured:
            body["tools"] = [{"type": "mcp", "server_label": name, "require_approval": "never",
                              **({"allowed_tools": sorted(allowed)} if allowed is not None else {})}
                             for name in self.servers.configured]
            body["tool_choice"] = "required" if selection.mode == "required" else "auto"
        run = await self.service.start(body, max_turns=options.max_turns)
        return _result(await run.whole())

    async def aclose(self) -> None:
        """Close the MCP connections."""
        await self.servers.aclose()

    async def __aenter__(self) -> ResponsesSession:
        return self

    async def __aexit__(self, *exc) -> None:
        await self.aclose()
