"""Responses over a chat completion stream: validate, continue a stored conversation, run the chat path, turn
its chunks into Responses events, store the result. No HTTP here (the frontend route and hosts call this).
A request with `mcp` tools runs as an agent (agent.py): several model turns and the MCP calls between them."""
from __future__ import annotations

import logging
from typing import AsyncIterator, Callable, Protocol

from pyimpl.llm.errors import ServingError
from pyimpl.llm.frontend.protocols import with_usage
from pyimpl.llm.responses.agent import DEFAULT_MAX_TURNS, Agent, uses_mcp
from pyimpl.llm.responses.events import ResponseStream
from pyimpl.llm.responses.items import chat_request
from pyimpl.llm.responses.mcp_tools import McpServers
from pyimpl.llm.responses.store import ResponseStore, StoredResponse, require
from pyimpl.llm.responses.types import validate_request

log = logging.getLogger(__name__)
TERMINAL = ("response.completed", "response.incomplete", "response.failed")


class ChatStreamer(Protocol):
    """What runs the chat path (the frontend's ModelManager): chat.completion.chunk dicts, each choice with the
    `token_ids` its delta came from when asked (reasoning tokens are counted with them); validation errors
    raise on the first iteration."""

    def chat_completion_stream(self, request: dict, *, token_ids: bool = False) -> AsyncIterator[dict]: ...


async def _first(chunks: AsyncIterator[dict]) -> tuple[AsyncIterator[dict], dict | None]:
    """The stream and its first chunk (None: it ended at once); an error before it closes the stream."""
    try:
        return chunks, await chunks.__anext__()
    except StopAsyncIteration:
        return chunks, None
    except BaseException:
        await chunks.aclose()
        raise


class ResponseRun:
    """One started response: `events()` yields every stream event; the conversation is stored (when the
    request asked for it) before the terminal event is handed out."""

    def __init__(self, service: ResponsesService, stream: ResponseStream, chunks: AsyncIterator[dict],
                 first: dict | None, items: list[dict], store: bool, prelude: list[dict] | None = None,
                 agent: Agent | None = None):
        self.service, self.stream, self.chunks, self.first = service, stream, chunks, first
        self.items, self.store = items, store
        self.prelude, self.agent = prelude, agent   # events made in start(); the MCP agent that runs the turns

    @property
    def response(self) -> dict:
        return self.stream.response

    async def events(self) -> AsyncIterator[dict]:
        stream = self.stream
        for event in self.prelude if self.prelude is not None else stream.start():
            yield event
        closing: list[dict] | None = None
        body = self.agent.turns(self.chunks, self.first) if self.agent is not None else self._one_turn()
        try:
            async for event in body:
                yield event
        except Exception as exc:   # after the response began: a response.failed event, never a broken stream
            if not isinstance(exc, ServingError):
                log.error("response %s failed", stream.response["id"], exc_info=exc)
            err = exc if isinstance(exc, ServingError) else ServingError("the model failed while generating")
            closing = stream.fail(err.code or "server_error", err.message)
        finally:
            await body.aclose()
            await self.chunks.aclose()
        closing = closing if closing is not None else stream.finish()
        if self.store:
            await self.service.store.put(StoredResponse(stream.response, [*self.items, *stream.output]))
        for event in closing:
            yield event

    async def _one_turn(self) -> AsyncIterator[dict]:
        if self.first is not None:
            for event in self.stream.on_chunk(self.first):
                yield event
        async for chunk in self.chunks:
            for event in self.stream.on_chunk(chunk):
                yield event

    async def whole(self) -> dict:
        """Run to the end; the final response object."""
        async for event in self.events():
            if event["type"] in TERMINAL:
                return event["response"]
        raise RuntimeError("response stream ended without a terminal event")


class ResponsesService:
    """Creates, fetches and deletes responses; `chat()` gives the chat path (it may be set up later); `mcp`: the
    MCP servers that requests' `mcp` tools reach (configured ones by label, URLs pooled); `max_turns` bounds an
    MCP agent's model turns."""

    def __init__(self, chat: Callable[[], ChatStreamer], store: ResponseStore, mcp: McpServers | None = None,
                 max_turns: int = DEFAULT_MAX_TURNS):
        self.chat, self.store = chat, store
        self.mcp = mcp if mcp is not None else McpServers()
        self.max_turns = max_turns

    async def start(self, body: dict, *, max_turns: int | None = None) -> ResponseRun:
        """Validate `body`, load its previous response, start the chat stream and wait for its first chunk,
        so that every error before generation (400, 404, 503) raises here, not inside the stream. With `mcp`
        tools the servers' tools are listed (and approved calls run) first; `max_turns` overrides the service's
        for this response."""
        req = validate_request(body)
        history: list[dict] = []
        if req.previous_response_id is not None:
            history = (await require(self.store, req.previous_response_id, "previous_response_id")).items
        if uses_mcp(req):
            stream = ResponseStream(req)
            prelude = stream.start()
            agent = await Agent.open(self.chat, req, stream, history, self.mcp, max_turns or self.max_turns)
            chunks, first = await _first(agent.start_turn(0))
            return ResponseRun(self, stream, chunks, first, agent.items, req.store is not False,
                               [*prelude, *agent.prelude], agent)
        chat_body, items = chat_request(req, history)
        chunks, first = await _first(self.chat().chat_completion_stream(with_usage(chat_body), token_ids=True))
        return ResponseRun(self, ResponseStream(req), chunks, first, [*history, *items], req.store is not False)

    async def create(self, body: dict) -> dict:
        """A whole (non-streamed) response."""
        return await (await self.start(body)).whole()

    async def get(self, response_id: str) -> dict:
        return (await require(self.store, response_id)).response

    async def delete(self, response_id: str) -> dict:
        await require(self.store, response_id)
        await self.store.delete(response_id)
        return {"id": response_id, "object": "response", "deleted": True}
