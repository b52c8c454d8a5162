"""The /v1/responses routes (create, streamed or whole; GET and DELETE by id) over the library's
ResponsesService, which runs on the frontend's ModelManager chat stream."""
from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, AsyncIterator, Awaitable, Callable

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from pyimpl.llm.errors import ServingError
from pyimpl.llm.frontend.http.responses import (KEEPALIVE, SSE_HEADERS, CancellableJSON, StreamTracker,
                                                as_serving_error, error_response, json_response,
                                                run_until_disconnect)
from pyimpl.llm.responses import ResponseRun, ResponsesService, ResponseStore

if TYPE_CHECKING:
    from pyimpl.llm.frontend.http.app import OpenAIFrontend

ENDPOINT = "/v1/responses"
STATUS = {"response.completed": "success", "response.incomplete": "success", "response.failed": "error"}


def sse_event(event: dict) -> bytes:
    """One server-sent event as OpenAI sends them: `event: <type>` and the event as JSON."""
    return b"event: " + event["type"].encode() + b"\ndata: " + msgspec.json.encode(event) + b"\n\n"


def observe_usage(tracker: StreamTracker, response: dict) -> None:
    """The response's token counts into the frontend's token histograms."""
    usage = response.get("usage")
    if usage:
        tracker.on_usage({"prompt_tokens": usage["input_tokens"], "completion_tokens": usage["output_tokens"]})


class EventStream:
    """The response's events as SSE; a client that goes away cancels the run (plain asyncio cancellation, as the
    chat stream: the chat path's own clean-up, which ends the worker request, runs to completion)."""

    def __init__(self, run: ResponseRun, tracker: StreamTracker, keepalive_s: float):
        self.run, self.tracker, self.keepalive_s = run, tracker, keepalive_s
        self.lock = asyncio.Lock()   # events and keep-alive comments are written by two tasks
        self.last_send = time.monotonic()

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": SSE_HEADERS})
        events = self.run.events()
        status = "error"
        try:
            disconnected, status = await run_until_disconnect(receive, self._send_all(events, send))
            if disconnected:
                status = "cancelled"
        finally:
            await events.aclose()
            self.tracker.finish(status)

    async def _write(self, send: Callable, body: bytes, more: bool = True) -> None:
        async with self.lock:
            await send({"type": "http.response.body", "body": body, "more_body": more})
            self.last_send = time.monotonic()

    async def _keepalive(self, send: Callable) -> None:
        """A comment line after every keepalive_s of silence (a long prefill), so proxies keep the stream open."""
        while True:
            await asyncio.sleep(self.keepalive_s - (time.monotonic() - self.last_send))
            if time.monotonic() - self.last_send >= self.keepalive_s:
                await self._write(send, KEEPALIVE)

    async def _send_all(self, events: AsyncIterator[dict], send: Callable) -> str:
        status = "error"
        ticker = asyncio.ensure_future(self._keepalive(send))
        try:
            async for event in events:
                if event["type"].endswith(".delta"):
                    self.tracker.on_content()
                if event["type"] in STATUS:
                    status = STATUS[event["type"]]
                    observe_usage(self.tracker, event["response"])
                await self._write(send, sse_event(event))
        finally:
            ticker.cancel()
            await asyncio.gather(ticker, return_exceptions=True)
        await self._write(send, b"", more=False)
        return status


class ResponsesAPI:
    """The routes; `frontend` gives auth, body limits, metrics and (once started) the ModelManager."""

    def __init__(self, frontend: OpenAIFrontend, store: ResponseStore):
        self.frontend = frontend
        self.service = ResponsesService(lambda: frontend.manager, store)

    def routes(self) -> list[Route]:
        return [Route(ENDPOINT, self.create, methods=["POST"]),
                Route(ENDPOINT + "/{response_id}", self.get, methods=["GET"]),
                Route(ENDPOINT + "/{response_id}", self.delete, methods=["DELETE"])]

    async def create(self, request: Request) -> Response:
        """POST /v1/responses: server-sent events when `stream` is true, else the whole response."""
        metrics = self.frontend.metrics
        try:
            body = await self.frontend.read_body(request)
        except ServingError as err:
            metrics.count_request("", ENDPOINT, "unknown", "error")
            return error_response(err)
        streaming = body.get("stream") is True
        tracker = StreamTracker(metrics, self.frontend.metric_model(body.get("model")), ENDPOINT,
                                "stream" if streaming else "unary")
        if not streaming:
            async def whole() -> Response:
                try:
                    response = await self.service.create(body)
                except Exception as exc:
                    return error_response(as_serving_error(exc))
                if response["output"]:
                    tracker.on_content()
                observe_usage(tracker, response)
                return json_response(response)
            return CancellableJSON(whole, tracker)
        try:
            run = await self.service.start(body)   # errors before the stream began get their HTTP status
        except Exception as exc:
            tracker.finish("error")
            return error_response(as_serving_error(exc))
        return EventStream(run, tracker, self.frontend.keepalive_s)

    async def get(self, request: Request) -> Response:
        """GET /v1/responses/{id}: a stored response, else 404."""
        return await self._by_id(request, self.service.get)

    async def delete(self, request: Request) -> Response:
        """DELETE /v1/responses/{id}: forget a stored response, else 404."""
        return await self._by_id(request, self.service.delete)

    async def _by_id(self, request: Request, action: Callable[[str], Awaitable[dict]]) -> Response:
        try:
            self.frontend.check_auth(request)
            return json_response(await action(request.path_params["response_id"]))
        except ServingError as err:
            return error_response(err)
