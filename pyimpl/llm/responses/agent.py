"""The agent loop of a response with `mcp` tools, run by this server: list the servers' tools, let the model call
them, run the calls (each an mcp_call item with its output or error), give the results back to the model, and
again, until it answers without MCP calls, a call needs approval (an mcp_approval_request item ends the
response; a later request's mcp_approval_response runs it), it calls a client's function tool, or the limits
(max_tool_calls, max_turns) end it. The turns run on the chat path, as a plain response does."""
from __future__ import annotations

from typing import AsyncIterator, Callable

import msgspec

from pyimpl.llm.errors import InvalidRequestError
from pyimpl.llm.frontend.protocols import with_usage
from pyimpl.llm.responses.events import ResponseStream
from pyimpl.llm.responses.items import chat_request, instructed
from pyimpl.llm.responses.mcp_tools import McpServers, McpToolbox, open_toolbox
from pyimpl.llm.responses.types import McpApprovalResponseItem, McpTool, ResponsesRequest

DEFAULT_MAX_TURNS = 10


def uses_mcp(req: ResponsesRequest) -> bool:
    """Whether the request needs the agent: an `mcp` tool, or an approval answer to run."""
    return any(isinstance(tool, McpTool) for tool in req.tools or ()) or \
        any(isinstance(item, McpApprovalResponseItem) for item in (req.input if isinstance(req.input, list) else ()))


class Agent:
    """One response's turns; `open` lists the tools and runs approved calls (their events are `prelude`)."""

    def __init__(self, chat: Callable, req: ResponsesRequest, stream: ResponseStream, toolbox: McpToolbox,
                 base: dict, items: list[dict], max_turns: int):
        self.chat, self.req, self.stream, self.toolbox = chat, req, stream, toolbox
        self.base, self.items, self.max_turns = base, items, max_turns
        self.prelude: list[dict] = []
        stream.mcp_names = toolbox.names
        stream.client_names = frozenset(t.name for t in req.tools or () if not isinstance(t, McpTool))

    @classmethod
    async def open(cls, chat: Callable, req: ResponsesRequest, stream: ResponseStream, history: list[dict],
                   servers: McpServers, max_turns: int = DEFAULT_MAX_TURNS) -> Agent:
        toolbox, listings = await open_toolbox(req, history, servers)
        tools = toolbox.chat_tools()
        if not tools and not any(not isinstance(t, McpTool) for t in req.tools or ()):
            req = msgspec.structs.replace(req, tool_choice=None)   # no server could list tools: answer without
        base, items = chat_request(req, history, tools)
        agent = cls(chat, req, stream, toolbox, base, [*history, *items], max_turns)
        for label, listed, error in listings:
            agent.prelude += stream.mcp_list_tools(label, listed, error)
        await agent._run_approved(history, items)
        return agent

    async def _run_approved(self, history: list[dict], items: list[dict]) -> None:
        """The calls the input approves run before the model's turn (refused ones are told to the model)."""
        requests = {item["id"]: item for item in history if item["type"] == "mcp_approval_request"}
        for answer in items:
            if answer["type"] != "mcp_approval_response":
                continue
            request = requests.get(answer["approval_request_id"])
            if request is None:
                raise InvalidRequestError(f"no mcp_approval_request {answer['approval_request_id']!r} in the "
                                          "conversation (previous_response_id)", "input")
            if answer["approve"]:
                self.prelude += await self._run_call(request["name"], request["arguments"], request["id"],
                                                     request["server_label"])

    async def _run_call(self, name: str, arguments: str, approval_request_id: str | None = None,
                        label: str | None = None) -> list[dict]:
        known = name in self.toolbox.names   # else the model called a tool nobody offered: an error item
        item, events = self.stream.mcp_call_started(label or (self.toolbox.label(name) if known else ""), name,
                                                    arguments, approval_request_id)
        result = await self.toolbox.call(name, arguments)
        return events + self.stream.mcp_call_finished(item, result.output, result.error)

    def body(self, turn: int) -> dict:
        """The chat request of a model turn: the conversation so far (with this response's items); after the
        first turn the model chooses freely, and the last turn (max_turns, or max_tool_calls spent) answers."""
        body = dict(self.base, messages=instructed(self.req, [*self.items, *self.stream.output]))
        if "tools" in body:
            spent = self.stream.call_limit is not None and self.stream.calls_made >= self.stream.call_limit
            if turn >= self.max_turns - 1 or spent:
                body["tool_choice"] = "none"
            elif turn > 0:
                body["tool_choice"] = "auto"
        return with_usage(body)

    def start_turn(self, turn: int) -> AsyncIterator[dict]:
        return self.chat().chat_completion_stream(self.body(turn), token_ids=True)

    async def turns(self, chunks: AsyncIterator[dict], first: dict | None) -> AsyncIterator[dict]:
        """The events of every turn, the first one's stream already started (`first`: its first chunk)."""
        stream, turn = self.stream, 0
        try:
            while True:
                if first is not None:
                    for event in stream.on_chunk(first):
                        yield event
                async for chunk in chunks:
                    for event in stream.on_chunk(chunk):
                        yield event
                await chunks.aclose()
                if not stream.pending:
                    return
                client_calls = any(item is not None and item.get("type") == "function_call"
                                   for item in stream.calls.values())
                events, pending = stream.end_turn()
                for event in events:
                    yield event
                waiting = False
                for call in pending:
                    if call["name"] in self.toolbox.names and self.toolbox.needs_approval(call["name"]):
                        waiting = True
                        events = stream.mcp_approval_request(self.toolbox.label(call["name"]), call["name"],
                                                             call["arguments"])
                    else:
                        events = await self._run_call(call["name"], call["arguments"])
                    for event in events:
                        yield event
                turn += 1
                if waiting or client_calls or turn >= self.max_turns:
                    return
                chunks, first = self.start_turn(turn), None
        finally:
            await chunks.aclose()
