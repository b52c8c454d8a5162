"""The OpenAI-compatible Starlette app: routes, auth, body limits, SSE streaming, errors, metrics.

The hot path (chat/completions) answers with small raw ASGI responses: no pydantic, msgspec
JSON encoding, and a disconnect watcher that cancels the worker request as soon as the client goes.
"""
from __future__ import annotations

import asyncio
import time
from typing import Any, AsyncIterator, Callable

import msgspec
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from pyimpl.llm.errors import (AuthenticationError, InvalidRequestError, NoWorkerError, PayloadTooLargeError,
                               ServingError)
from pyimpl.llm.http.metrics import FrontendMetrics
from pyimpl.llm.http.openapi import OPENAPI_SPEC
from pyimpl.llm.protocols import with_usage

DEFAULT_MAX_BODY_BYTES = 8 * 1024 * 1024
DEFAULT_KEEPALIVE_S = 10.0
_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder().decode
SSE_HEADERS = [(b"content-type", b"text/event-stream; charset=utf-8"), (b"cache-control", b"no-cache"),
               (b"x-accel-buffering", b"no")]
DONE = b"data: [DONE]\n\n"
KEEPALIVE = b": keep-alive\n\n"


def json_response(body: Any, status: int = 200) -> Response:
    """A JSON response encoded with msgspec."""
    return Response(_encode(body), status_code=status, media_type="application/json")


def error_response(err: ServingError) -> Response:
    """OpenAI's error envelope with the error's HTTP status."""
    return json_response(err.envelope(), err.status)


def _as_serving_error(exc: BaseException) -> ServingError:
    if isinstance(exc, ServingError):
        return exc
    from pyimpl.runtime.errors import NoInstancesError
    if isinstance(exc, NoInstancesError):
        return NoWorkerError(str(exc))
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

    __slots__ = ("metrics", "model", "endpoint", "request_type", "start", "last", "first_seen", "_itl")

    def __init__(self, metrics: FrontendMetrics, model: str, endpoint: str, request_type: str):
        self.metrics, self.model, self.endpoint, self.request_type = metrics, model, endpoint, request_type
        self.start = self.last = time.perf_counter()
        self.first_seen = False
        self._itl = None
        metrics.inflight.labels(model).inc()

    def on_content(self) -> None:
        now = time.perf_counter()
        if self.first_seen:
            self._itl.observe(now - self.last)
        else:
            self.first_seen = True
            self._itl = self.metrics.itl.labels(self.model)
            self.metrics.ttft.labels(self.model).observe(now - self.start)
        self.last = now

    def on_usage(self, usage: dict | None) -> None:
        if usage:
            self.metrics.input_tokens.labels(self.model).observe(usage["prompt_tokens"])
            self.metrics.output_tokens.labels(self.model).observe(usage["completion_tokens"])

    def finish(self, status: str) -> None:
        m = self.metrics
        m.inflight.labels(self.model).dec()
        m.duration.labels(self.model).observe(time.perf_counter() - self.start)
        m.requests.labels(self.model, self.endpoint, self.request_type, status).inc()


class SSEResponse:
    """Streams OpenAI chunks as SSE, with keep-alive comments, an error event and client-disconnect cancel.

    A producer encodes chunks into a buffer as fast as the worker sends them; the sender writes
    whatever has gathered in one `send`, so bursts cost one write instead of one per chunk.
    """

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
                self.pending.append(KEEPALIVE)
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
            pending.append(b"event: error\ndata: " + _encode(_as_serving_error(exc).envelope()) + b"\n\n")
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


class OpenAIFrontend:
    """The HTTP frontend over a ModelManager (or one supplied later by a lifespan)."""

    def __init__(self, manager: Any = None, api_key: str | None = None,
                 max_body_bytes: int = DEFAULT_MAX_BODY_BYTES, keepalive_s: float = DEFAULT_KEEPALIVE_S,
                 metrics: FrontendMetrics | None = None):
        self.manager, self.api_key = manager, api_key
        self.max_body_bytes, self.keepalive_s = max_body_bytes, keepalive_s
        self.metrics = metrics or FrontendMetrics()

    def routes(self) -> list[Route]:
        """Starlette routes of the OpenAI API and the operational endpoints."""
        return [Route("/v1/chat/completions", self.chat_completions, methods=["POST"]),
                Route("/v1/completions", self.completions, methods=["POST"]),
                Route("/v1/embeddings", self.embeddings, methods=["POST"]),
                Route("/v1/models", self.models, methods=["GET"]),
                Route("/health", self.health, methods=["GET"]),
                Route("/live", self.live, methods=["GET"]),
                Route("/metrics", self.metrics_endpoint, methods=["GET"]),
                Route("/openapi.json", self.openapi, methods=["GET"])]

    def app(self, lifespan: Any = None) -> Callable:
        """The ASGI app: generation routes go straight to their handlers (no middleware on the
        per-chunk `send`); everything else through Starlette."""
        starlette = Starlette(routes=self.routes(), lifespan=lifespan)
        fast = {"/v1/chat/completions": ("chat", "/v1/chat/completions"),
                "/v1/completions": ("completion", "/v1/completions")}

        async def asgi(scope: dict, receive: Callable, send: Callable) -> None:
            route = fast.get(scope.get("path")) if scope["type"] == "http" and scope["method"] == "POST" else None
            if route is None:
                return await starlette(scope, receive, send)
            response = await self._generate(Request(scope, receive), *route)
            await response(scope, receive, send)
        asgi.starlette = starlette
        return asgi

    # ---- request intake ---------------------------------------------------------------------

    def _check_auth(self, request: Request) -> None:
        if self.api_key is None:
            return
        header = request.headers.get("authorization", "")
        if header != f"Bearer {self.api_key}":
            raise AuthenticationError("Incorrect or missing API key" if header else "Missing API key")

    async def _body(self, request: Request) -> dict:
        self._check_auth(request)
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > self.max_body_bytes:
            raise PayloadTooLargeError(f"request body of {length} bytes exceeds {self.max_body_bytes}", "body")
        parts, size = [], 0
        async for part in request.stream():
            size += len(part)
            if size > self.max_body_bytes:
                raise PayloadTooLargeError(f"request body exceeds {self.max_body_bytes} bytes", "body")
            parts.append(part)
        try:
            body = _decode(b"".join(parts))
        except msgspec.DecodeError as exc:
            raise InvalidRequestError(f"request body is not valid JSON: {exc}", "body") from exc
        if not isinstance(body, dict):
            raise InvalidRequestError("request body must be a JSON object", "body")
        return body

    # ---- OpenAI routes ----------------------------------------------------------------------

    async def chat_completions(self, request: Request) -> Any:
        """POST /v1/chat/completions (routed here by Starlette; the fast path calls _generate directly)."""
        return await self._generate(request, "chat", "/v1/chat/completions")

    async def completions(self, request: Request) -> Any:
        """POST /v1/completions."""
        return await self._generate(request, "completion", "/v1/completions")

    def _metric_model(self, name: Any) -> str:
        """The model label for metrics: only served names and aliases, so clients cannot grow the label set."""
        manager = self.manager
        return name if isinstance(name, str) and (name in manager.models or name in manager.aliases) else ""

    async def _generate(self, request: Request, kind: str, endpoint: str) -> Any:
        """Validate and start a chat/completion; errors before the first chunk get a proper HTTP status."""
        try:
            body = await self._body(request)
        except ServingError as err:
            self.metrics.requests.labels("", endpoint, "unknown", "error").inc()
            return error_response(err)
        model = self._metric_model(body.get("model"))
        streaming = body.get("stream") is True
        tracker = StreamTracker(self.metrics, model, endpoint, "stream" if streaming else "unary")
        if streaming:
            options = body.get("stream_options")
            include_usage = isinstance(options, dict) and options.get("include_usage") is True
            body = with_usage(body)
            stream = (self.manager.chat_completion_stream(body) if kind == "chat"
                      else self.manager.completion_stream(body))
            try:
                first = await stream.__anext__()  # errors before streaming get a proper status
            except StopAsyncIteration:
                first = None
            except Exception as exc:
                await stream.aclose()
                tracker.finish("error")
                return error_response(_as_serving_error(exc))
            return SSEResponse(first, stream, tracker, include_usage, self.keepalive_s)

        async def whole() -> Response:
            try:
                result = await (self.manager.chat_completion(body) if kind == "chat"
                                else self.manager.completion(body))
            except Exception as exc:
                return error_response(_as_serving_error(exc))
            for choice in result["choices"]:
                if choice.get("message") is not None or choice.get("text") is not None:
                    tracker.on_content()
                    break
            tracker.on_usage(result.get("usage"))
            return json_response(result)
        return CancellableJSON(whole, tracker)

    async def embeddings(self, request: Request) -> Response:
        """POST /v1/embeddings, answered by an embedding worker."""
        tracker = None
        try:
            body = await self._body(request)
            tracker = StreamTracker(self.metrics, self._metric_model(body.get("model")), "/v1/embeddings", "unary")
            result = await self.manager.embeddings(body)
        except Exception as exc:
            if tracker is not None:
                tracker.finish("error")
            return error_response(_as_serving_error(exc))
        tracker.on_usage({"prompt_tokens": result["usage"]["prompt_tokens"], "completion_tokens": 0})
        tracker.finish("success")
        return json_response(result)

    async def models(self, request: Request) -> Response:
        """GET /v1/models: served models and aliases."""
        try:
            self._check_auth(request)
        except ServingError as err:
            return error_response(err)
        return json_response(self.manager.list_models())

    # ---- operational routes -----------------------------------------------------------------

    async def health(self, request: Request) -> Response:
        """GET /health: healthy once at least one model is served."""
        manager = self.manager
        names = manager.model_names() if manager is not None else []
        instances = {name: len(entry.client.instance_ids()) for name, entry in manager.models.items()} \
            if manager is not None else {}
        return json_response({"status": "healthy" if names else "no_models", "models": names,
                              "instances": instances})

    async def live(self, request: Request) -> Response:
        """GET /live: the process is up."""
        return json_response({"status": "live"})

    async def metrics_endpoint(self, request: Request) -> Response:
        """GET /metrics in Prometheus text format."""
        return Response(self.metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")

    async def openapi(self, request: Request) -> Response:
        """GET /openapi.json."""
        return json_response(OPENAPI_SPEC)
