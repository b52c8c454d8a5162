"""A client of one MCP server (the official `mcp` SDK): list its tools and call them, each within a timeout, so a
server that fails, hangs or is down gives an error (OpenAI's mcp_call error shapes) and never a hung request.

The SDK's session lives in anyio task groups, which must be entered and left by one task; so one background task
(per connection) holds the session open and runs the calls handed to it. A stdio server stays one process for many
calls, an HTTP server one session; a connection that broke is opened again on the next call."""
from __future__ import annotations

import asyncio
import json
import logging
import sys
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Awaitable, Callable, TypeVar

import anyio

from pyimpl.llm.responses.mcp_config import McpServerSpec

log = logging.getLogger(__name__)
DEFAULT_TIMEOUT_S = 30.0
TIMEOUT_CODE = -32001   # the JSON-RPC code MCP SDKs use for a request that timed out
T = TypeVar("T")


@dataclass(frozen=True)
class McpToolInfo:
    """One tool a server offers, as an mcp_list_tools item lists it."""

    name: str
    input_schema: dict
    description: str | None = None
    annotations: dict | None = None

    @property
    def read_only(self) -> bool:
        return bool((self.annotations or {}).get("readOnlyHint"))

    def as_item(self) -> dict:
        return {"name": self.name, "description": self.description, "input_schema": self.input_schema,
                "annotations": self.annotations}


@dataclass(frozen=True)
class McpCallResult:
    """A tool call's text output, or its error object (mcp_protocol_error | mcp_tool_execution_error |
    http_error, as OpenAI's mcp_call item carries it)."""

    output: str | None = None
    error: dict | None = None


class McpError(Exception):
    """The server could not be reached, timed out or answered with a protocol error; `error` is the error object."""

    def __init__(self, error: dict):
        super().__init__(error.get("message") or error.get("type"))
        self.error = error


try:
    BaseExceptionGroup
except NameError:   # Python 3.10: anyio's backport
    from exceptiongroup import BaseExceptionGroup


def _leaf(exc: BaseException) -> BaseException:
    """The first real error inside anyio's exception groups."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


def import_sdk() -> None:
    """Import the parts of the `mcp` SDK used here (imported when first needed: it takes a second or more)."""
    import mcp  # noqa: F401
    import mcp.client.streamable_http  # noqa: F401
    import mcp.shared._httpx_utils  # noqa: F401


def error_object(exc: BaseException, timeout_s: float) -> dict:
    """An exception from talking to a server as an mcp_call error object."""
    from mcp import MCPError
    exc = _leaf(exc)
    if isinstance(exc, McpError):
        return exc.error
    if isinstance(exc, TimeoutError):
        return {"type": "mcp_protocol_error", "code": TIMEOUT_CODE,
                "message": f"the MCP server did not answer within {timeout_s:g} s"}
    if isinstance(exc, MCPError):
        return {"type": "mcp_protocol_error", "code": exc.code, "message": exc.message}
    status = getattr(getattr(exc, "response", None), "status_code", None)
    return {"type": "http_error", "code": status if isinstance(status, int) else 502,
            "message": f"cannot reach the MCP server: {type(exc).__name__}: {exc}"}


def _content_text(result) -> str:
    """A CallToolResult's content as one text: text blocks joined, other blocks (and structured content when
    there is no text) as JSON."""
    parts = [block.text if getattr(block, "type", None) == "text" else json.dumps(block.model_dump(mode="json"))
             for block in result.content]
    if not parts and result.structured_content is not None:
        parts.append(json.dumps(result.structured_content))
    return "\n".join(parts)


class McpClient:
    """One MCP server behind a background task; `timeout_s` bounds connecting and each call."""

    def __init__(self, spec: McpServerSpec, timeout_s: float = DEFAULT_TIMEOUT_S):
        self.spec, self.timeout_s = spec, timeout_s
        self._task: asyncio.Task | None = None
        self._queue: asyncio.Queue | None = None
        self._connected = False   # the current task's session is open
        self._stale = False

    async def list_tools(self) -> list[McpToolInfo]:
        """Every tool the server offers (all pages); McpError when it cannot say."""
        async def fetch(client) -> list[McpToolInfo]:
            tools, cursor = [], None
            while True:
                page = await client.list_tools(cursor=cursor)
                tools += [McpToolInfo(t.name, t.input_schema, t.description,
                                      t.annotations.model_dump(by_alias=True, exclude_none=True)
                                      if t.annotations else None) for t in page.tools]
                cursor = page.next_cursor
                if not cursor:
                    return tools
        return await self._submit(fetch)

    async def call_tool(self, name: str, arguments: dict) -> McpCallResult:
        """Run one tool: its output, or the error (never raises for the server's sake)."""
        try:
            result = await self._submit(lambda client: client.call_tool(name, arguments))
        except Exception as exc:
            return McpCallResult(error=error_object(exc, self.timeout_s))
        text = _content_text(result)
        if result.is_error:
            return McpCallResult(error={"type": "mcp_tool_execution_error",
                                        "content": [block.model_dump(mode="json") for block in result.content]})
        return McpCallResult(output=text)

    async def aclose(self) -> None:
        """End the connection (a stdio server's process exits)."""
        task, queue = self._task, self._queue
        self._task = self._queue = None
        if task is not None and not task.done():
            queue.put_nowait(None)
            try:
                await asyncio.wait_for(task, self.timeout_s)
            except BaseException:   # a server that does not let go is dropped
                task.cancel()

    async def _submit(self, op: Callable[..., Awaitable[T]]) -> T:
        if "mcp.client.streamable_http" not in sys.modules:   # the SDK takes seconds to import: not on the clock
            await asyncio.to_thread(import_sdk)
        if self._stale and self._queue is not None:   # a transport error: finish the old session, open a new one
            self._queue.put_nowait(None)
            self._task = None
        if self._task is None or self._task.done():
            self._stale = self._connected = False
            self._queue = asyncio.Queue()
            self._task = asyncio.create_task(self._serve(self._queue), name=f"mcp:{self.spec.name}")
        future = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((op, future))
        try:
            return await asyncio.wait_for(future, self.timeout_s)
        except (TimeoutError, asyncio.TimeoutError) as exc:
            self._stale = True
            if not self._connected and self._task is not None:   # stuck connecting: give up on that session
                self._task.cancel()
            raise McpError(error_object(TimeoutError(), self.timeout_s)) from exc

    def _client(self, stack: AsyncExitStack):
        from mcp import Client, StdioServerParameters
        spec = self.spec
        if spec.command is not None:
            return Client(StdioServerParameters(command=spec.command, args=list(spec.args), env=spec.env),
                          cache=None)
        import httpx2
        from mcp.client.streamable_http import streamable_http_client
        from mcp.shared._httpx_utils import create_mcp_http_client
        http = create_mcp_http_client(headers=spec.headers or None,
                                      timeout=httpx2.Timeout(self.timeout_s, read=max(self.timeout_s, 300.0)))
        stack.push_async_callback(http.aclose)
        return Client(streamable_http_client(spec.url, http_client=http), cache=None)

    async def _serve(self, queue: asyncio.Queue) -> None:
        """The session's task: connect, then run each job handed over until None (or the connection fails);
        whatever is still queued when it ends gets the error."""
        failure: BaseException = ConnectionError("the MCP connection closed")
        try:
            async with AsyncExitStack() as stack:   # connecting is bounded by the caller's wait (see _submit)
                client = await stack.enter_async_context(self._client(stack))
                self._connected = True
                async with anyio.create_task_group() as jobs:
                    while (job := await queue.get()) is not None:
                        jobs.start_soon(self._run, client, *job)
        except BaseException as exc:
            failure = exc
            if not isinstance(exc, asyncio.CancelledError):
                log.warning("MCP server %s: %s", self.spec.name, _leaf(exc))
            if isinstance(exc, (asyncio.CancelledError, KeyboardInterrupt, SystemExit)):
                raise
        finally:
            while not queue.empty():
                job = queue.get_nowait()
                if job is not None and not job[1].done():
                    job[1].set_exception(McpError(error_object(failure, self.timeout_s)))

    async def _run(self, client, op: Callable, future: asyncio.Future) -> None:
        try:
            with anyio.fail_after(self.timeout_s):
                result = await op(client)
        except Exception as exc:
            from mcp import MCPError
            if not isinstance(_leaf(exc), MCPError):   # the session may be broken (a timed-out POST to a server
                self._stale = True                     # that went away): the next call opens a new one
            if not future.done():
                future.set_exception(McpError(error_object(exc, self.timeout_s)))
            return
        if not future.done():
            future.set_result(result)
