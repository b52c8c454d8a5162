"""The frontend's HTTP answers: JSON and OpenAI error envelopes, SSE streams with keep-alives, and
cancel-on-disconnect, as small raw ASGI responses (no middleware on the per-chunk send)."""
from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, AsyncIterator, Callable

import msgspec
from starlette.convertors import Convertor, register_url_convertor
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from pyimpl.llm.errors import NoWorkerError, ServingError
from pyimpl.llm.frontend.http.metrics import FrontendMetrics

_encode = msgspec.json.Encoder().encode
decode_json = msgspec.json.Decoder().decode
SSE_HEADERS = [(b"content-type", b"text/event-stream; charset=utf-8"), (b"cache-control", b"no-cache"),
               (b"x-accel-buffering", b"no")]
DONE = b"data: [DONE]\n\n"
log = logging.getLogger("pyimpl.frontend")
KEEPALIVE = b": keep-alive\n\n"


def json_response(body: Any, status: int = 200) -> Response:
    """A JSON response encoded with msgspec."""
    return Response(_encode(body), status_code=status, media_type="application/json")


def error_response(err: ServingError) -> Response:
    """OpenAI's error envelope with the error's HTTP status (and `Retry-After` when the error passes)."""
    log_server_error(err)
    response = json_response(err.envelope(), err.status)
    if err.retry_after_s is not None:
        response.headers["retry-after"] = str(err.retry_after_s)
    return response


def log_server_error(err: ServingError, where: str = "answer") -> None:
    """Every 5xx is logged (at INFO and above): an error for 500s, a warning for a passing 503."""
    if err.status >= 500:
        log.log(logging.WARNING if err.retry_after_s else logging.ERROR, "%d %s in the %s: %s", err.status,
                err.error_type, where, err.message)


async def http_error_response(request: Request, exc: HTTPException) -> Response:
    """Starlette's own errors (no such route, wrong method) in OpenAI's envelope too, never text/plain."""
    return json_response({"error": {"message": f"{request.method} {request.url.path}: {exc.detail}",
                                    "type": "invalid_request_error", "param": None,
                                    "code": "not_found" if exc.status_code == 404 else None}}, exc.status_code)


class AnyTextConvertor(Convertor):
    """A path segment run that may hold any character, newlines included (Starlette's `path` stops at one)."""

    regex = "[\\s\\S]+"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("anytext", AnyTextConvertor())


def as_serving_error(exc: BaseException) -> ServingError:
    if isinstance(exc, ServingError):
        return exc
    from pyimpl.runtime.errors import NoInstancesError
    if isinstance(exc, NoInstancesError):
        return NoWorkerError(str(exc))
    log.error("unexpected error serving a request", exc_info=exc)
    return ServingError(f"{type(exc).__name__}: {exc}")


async def _watch_disconnect(receive: Callable) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return


async def run_until_disconnect(receive: Callable, work: Any) -> tuple[bool, Any]:
    """Run `work` (a coroutine) but cancel it when the client disconnects; (disconnected, result)."""
    task = asyncio.ensure_future(work)
    watcher = asyncio.ensure_future(_watch_disconnect(receive))
    try:
        await asyncio.wait((task, watcher), return_when=asyncio.FIRST_COMPLETED)
    except asyncio.CancelledError:
        task.cancel()
        watcher.cancel()
        raise
    if task.done():
        watcher.cancel()
        return False, task.result()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    return True, None


class StreamTracker:
    """Per-request metric bookkeeping: inflight, TTFT, inter-token latency, tokens, status."""

    __slots__ = ("metrics", "series", "model", "endpoint", "request_type", "start", "last", "first_seen")

    def __init__(self, metrics: FrontendMetrics, model: str, endpoint: str, request_type: str):
        self.metrics, self.model, self.endpoint, self.request_type = metrics, model, endpoint, request_type
        self.series = metrics.series(model)
        self.start = self.last = time.perf_counter()
        self.first_seen = False
        self.series.inflight.inc()

    def on_content(self) -> None:
        now = time.perf_counter()
        if self.first_seen:
            self.series.itl.observe(now - self.last)
        else:
            self.first_seen = True
            self.series.ttft.observe(now - self.start)
        self.last = now

    def on_usage(self, usage: dict | None) -> None:
        if usage:
            self.series.input_tokens.observe(usage["prompt_tokens"])
            self.series.output_tokens.observe(usage["completion_tokens"])

    def finish(self, status: str) -> None:
        series = self.series
        series.inflight.dec()
        series.duration.observe(time.perf_counter() - self.start)
        self.metrics.count_request(self.model, self.endpoint, self.request_type, status)


class SSEResponse:
    """Streams OpenAI chunks as SSE, with keep-alive comments, an error event and client-disconnect cancel.

    A producer encodes chunks into a buffer as fast as the worker sends them; the sender writes
    whatever has gathered in one `send`, so bursts cost one write instead of one per chunk.
    """

    keepalive_event = KEEPALIVE   # what is sent after keepalive_s of silence (a subclass may send an event)

    def __init__(self, first: dict | None, rest: AsyncIterator[dict], tracker: StreamTracker,
                 include_usage: bool, keepalive_s: float):
        self.first, self.rest, self.tracker = first, rest, tracker
        self.include_usage, self.keepalive_s = include_usage, keepalive_s
        self.pending: list[bytes] = []
        self.ready = asyncio.Event()
        self.last_send = time.monotonic()

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": SSE_HEADERS})
        keepalive = asyncio.ensure_future(self._keepalive())
        status = "error"
        try:
            disconnected, status = await run_until_disconnect(receive, self._send_loop(send))
            if disconnected:
                status = "cancelled"
        finally:
            keepalive.cancel()
            await self.rest.aclose()
            self.tracker.finish(status)

    async def _keepalive(self) -> None:
        while True:
            await asyncio.sleep(self.keepalive_s)
            if time.monotonic() - self.last_send >= self.keepalive_s and not self.pending:
                self.pending.append(self.keepalive_event)
                self.ready.set()

    async def _send_loop(self, send: Callable) -> str:
        producer = asyncio.ensure_future(self._produce())
        try:
            while True:
                await self.ready.wait()
                self.ready.clear()
                finished = producer.done()
                if self.pending or finished:
                    body = b"".join(self.pending)
                    self.pending.clear()
                    self.last_send = time.monotonic()
                    await send({"type": "http.response.body", "body": body, "more_body": not finished})
                if finished:
                    return producer.result()
        finally:
            if not producer.done():
                producer.cancel()
                await asyncio.gather(producer, return_exceptions=True)

    async def _produce(self) -> str:
        tracker, pending, ready = self.tracker, self.pending, self.ready
        status = "success"
        try:
            if self.first is not None:
                pending.append(b"data: " + _encode(self.first) + b"\n\n")
                ready.set()
            async for chunk in self.rest:
                if not chunk["choices"]:
                    tracker.on_usage(chunk.get("usage"))
                    if not self.include_usage:
                        continue
                else:
                    tracker.on_content()
                pending.append(b"data: " + _encode(chunk) + b"\n\n")
                ready.set()
        except Exception as exc:  # the stream had begun: report in-band
            status = "error"
            err = as_serving_error(exc)
            log_server_error(err, "stream")
            pending.append(b"event: error\ndata: " + _encode(err.envelope()) + b"\n\n")
        pending.append(DONE)
        ready.set()
        return status


class CancellableJSON:
    """A non-streaming answer computed while watching for the client to go away."""

    def __init__(self, work: Callable[[], Any], tracker: StreamTracker):
        self.work, self.tracker = work, tracker

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        status = "error"
        try:
            disconnected, response = await run_until_disconnect(receive, self.work())
            if disconnected:
                status = "cancelled"
                return
            status = "success" if response.status_code < 400 else "error"
            await response(scope, receive, send)
        finally:
            self.tracker.finish(status)
