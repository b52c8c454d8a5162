"""The OpenAI-compatible Starlette app: routes, auth, body limits, errors, metrics (answers: responses.py).

The hot path (chat/completions) answers with small raw ASGI responses: no pydantic, msgspec
JSON encoding, and a disconnect watcher that cancels the worker request as soon as the client goes.
"""
from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any, Callable

import msgspec
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from pyimpl import __version__
from pyimpl.llm.errors import (AuthenticationError, InvalidRequestError, ModelNotFoundError, PayloadTooLargeError,
                               ServingError)
from pyimpl.llm.frontend.http.metrics import FrontendMetrics
from pyimpl.llm.frontend.http.messages_api import MessagesAPI
from pyimpl.llm.frontend.http.openapi import OPENAPI_SPEC
from pyimpl.llm.frontend.http.tokenize import tokenization_routes
from pyimpl.llm.frontend.http.responses_api import ResponsesAPI
from pyimpl.llm.frontend.http.responses import (CancellableJSON, SSEResponse, StreamTracker, as_serving_error, decode_json,
                                       error_response, http_error_response, json_response)
from pyimpl.llm.frontend.protocols import with_usage
from pyimpl.llm.responses import MemoryResponseStore, ResponseStore

if TYPE_CHECKING:
    from pyimpl.llm.frontend.model_manager import ModelManager

ACCESS_LOG = logging.getLogger("pyimpl.frontend.access")
DEFAULT_MAX_BODY_BYTES = 8 * 1024 * 1024
DEFAULT_KEEPALIVE_S = 10.0


class OpenAIFrontend:
    """The HTTP frontend over a ModelManager (or one supplied later by a lifespan)."""

    def __init__(self, manager: ModelManager | None = None, api_key: str | None = None,
                 max_body_bytes: int = DEFAULT_MAX_BODY_BYTES, keepalive_s: float = DEFAULT_KEEPALIVE_S,
                 metrics: FrontendMetrics | None = None, responses_store: ResponseStore | None = None):
        self.manager, self.api_key = manager, api_key
        self.max_body_bytes, self.keepalive_s = max_body_bytes, keepalive_s
        self.metrics = metrics or FrontendMetrics()
        self.responses = ResponsesAPI(self, responses_store or MemoryResponseStore())  # /v1/responses

    def routes(self) -> list[Route]:
        """Starlette routes of the OpenAI API and the operational endpoints."""
        return [Route("/v1/chat/completions", self.chat_completions, methods=["POST"]),
                Route("/v1/completions", self.completions, methods=["POST"]),
                Route("/v1/embeddings", self.embeddings, methods=["POST"]),
                *self.responses.routes(),
                Route("/v1/models", self.models, methods=["GET"]),
                Route("/v1/models/{model:anytext}", self.model, methods=["GET"]),
                *MessagesAPI(self, self._body).routes(),
                *tokenization_routes(lambda: self.manager, self._body),
                Route("/version", self.version, methods=["GET"]),
                Route("/health", self.health, methods=["GET"]),
                Route("/live", self.live, methods=["GET"]),
                Route("/metrics", self.metrics_endpoint, methods=["GET"]),
                Route("/openapi.json", self.openapi, methods=["GET"])]

    def app(self, lifespan: Any = None) -> Callable:
        """The ASGI app: generation routes go straight to their handlers (no middleware on the
        per-chunk `send`); everything else through Starlette."""
        starlette = Starlette(routes=self.routes(), lifespan=lifespan,
                              exception_handlers={HTTPException: http_error_response})
        fast = {"/v1/chat/completions": ("chat", "/v1/chat/completions"),
                "/v1/completions": ("completion", "/v1/completions")}

        async def handle(scope: dict, receive: Callable, send: Callable) -> None:
            route = fast.get(scope.get("path")) if scope["type"] == "http" and scope["method"] == "POST" else None
            if route is None:
                return await starlette(scope, receive, send)
            response = await self._generate(Request(scope, receive), *route)
            await response(scope, receive, send)

        async def asgi(scope: dict, receive: Callable, send: Callable) -> None:
            if scope["type"] != "http" or not ACCESS_LOG.isEnabledFor(logging.INFO):
                return await handle(scope, receive, send)
            await access_logged(handle, scope, receive, send)
        asgi.starlette = starlette
        return asgi

    # ---- request intake ---------------------------------------------------------------------

    def _check_auth(self, request: Request) -> None:
        if self.api_key is None:
            return
        header = request.headers.get("authorization", "")
        api_key = request.headers.get("x-api-key")   # how Anthropic's clients send it
        if header != f"Bearer {self.api_key}" and api_key != self.api_key:
            raise AuthenticationError("Incorrect or missing API key" if header or api_key else "Missing API key")

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
            body = decode_json(b"".join(parts))
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

    # public names for routes mounted from other modules (responses_api)
    read_body, check_auth, metric_model = _body, _check_auth, _metric_model

    async def _generate(self, request: Request, kind: str, endpoint: str) -> Any:
        """Validate and start a chat/completion; errors before the first chunk get a proper HTTP status."""
        try:
            body = await self._body(request)
        except ServingError as err:
            self.metrics.count_request("", endpoint, "unknown", "error")
            return error_response(err)
        model = self._metric_model(body.get("model"))
        streaming = body.get("stream") is True
        options = body.get("stream_options")   # a malformed one is left to validation, which names its field
        if body.get("stream") in (None, False) and isinstance(options, dict) and \
                options.get("include_usage") in (None, True, False):
            self.metrics.count_request(model, endpoint, "unary", "error")
            return error_response(InvalidRequestError("'stream_options' is only allowed when 'stream' is true",
                                                      "stream_options"))
        tracker = StreamTracker(self.metrics, model, endpoint, "stream" if streaming else "unary")
        if streaming:
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
                return error_response(as_serving_error(exc))
            return SSEResponse(first, stream, tracker, include_usage, self.keepalive_s)

        async def whole() -> Response:
            try:
                result = await (self.manager.chat_completion(body) if kind == "chat"
                                else self.manager.completion(body))
            except Exception as exc:
                return error_response(as_serving_error(exc))
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
            return error_response(as_serving_error(exc))
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

    async def model(self, request: Request) -> Response:
        """GET /v1/models/{model}: one served model or alias, else 404 model_not_found."""
        try:
            self._check_auth(request)
            name = request.path_params["model"]
            for card in self.manager.list_models()["data"]:
                if card["id"] == name:
                    return json_response(card)
            raise ModelNotFoundError(f"The model `{name}` does not exist or no worker serves it", param=None)
        except ServingError as err:
            return error_response(err)

    # ---- operational routes -----------------------------------------------------------------

    async def version(self, request: Request) -> Response:
        """GET /version: the frontend's package version."""
        return json_response({"version": __version__})

    async def health(self, request: Request) -> Response:
        """GET /health: 200 once at least one model can serve (tokenizer loaded, a live worker), else 503;
        `instances` counts each known model's live workers, exactly those its requests go to."""
        manager = self.manager
        names = manager.model_names() if manager is not None else []
        instances = manager.live_instances() if manager is not None else {}
        return json_response({"status": "healthy" if names else "no_models", "models": names,
                              "instances": instances}, 200 if names else 503)

    async def live(self, request: Request) -> Response:
        """GET /live: the process is up."""
        return json_response({"status": "live"})

    async def metrics_endpoint(self, request: Request) -> Response:
        """GET /metrics in Prometheus text format."""
        if self.manager is not None:
            self.metrics.set_kv_index(self.manager.kv_indexed_blocks())
        return Response(self.metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")

    async def openapi(self, request: Request) -> Response:
        """GET /openapi.json."""
        return json_response(OPENAPI_SPEC)


async def access_logged(app: Callable, scope: dict, receive: Callable, send: Callable) -> None:
    """Run `app` and log one access line when its answer is over (a stream: when the stream ends): method, path,
    status and duration, also as extra fields for JSON logs. Only runs when the access log is at INFO."""
    start, status = time.perf_counter(), 0

    async def send_tracked(message: dict) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        await send(message)
    try:
        await app(scope, receive, send_tracked)
    finally:
        ms = (time.perf_counter() - start) * 1000
        client = scope.get("client")
        ACCESS_LOG.info("%s %s %d %.1f ms", scope["method"], scope["path"], status, ms,
                        extra={"method": scope["method"], "path": scope["path"], "status": status,
                               "duration_ms": round(ms, 1), "client": f"{client[0]}:{client[1]}" if client else None})
