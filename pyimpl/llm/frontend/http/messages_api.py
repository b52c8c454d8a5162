"""POST /v1/messages and /v1/messages/count_tokens: Anthropic's Messages API over the frontend's chat path
(ModelManager's chat stream), with Anthropic's SSE events and error shape on these routes only."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, AsyncGenerator, Awaitable, Callable

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from pyimpl.llm.errors import ServingError
from pyimpl.llm.frontend.anthropic import (anthropic_error, message_events, parse_messages_request, to_chat_request,
                                           to_message)
from pyimpl.llm.frontend.http.responses import (CancellableJSON, SSEResponse, StreamTracker, as_serving_error,
                                                json_response, log_server_error)
from pyimpl.llm.frontend.http.tokenize import tokenize_body
from pyimpl.llm.frontend.prompt_input import text_size, tool_choice_hint
from pyimpl.llm.frontend.protocols import parse_chat_request, with_usage
from pyimpl.llm.text.preprocessor import LARGE_TEXT

if TYPE_CHECKING:
    from pyimpl.llm.frontend.http.app import OpenAIFrontend

_encode = msgspec.json.Encoder().encode
PING = b'event: ping\ndata: {"type":"ping"}\n\n'
ENDPOINT = "/v1/messages"


def sse_event(kind: str, data: Any) -> bytes:
    """One SSE event as Anthropic sends them: `event: <type>` and the event as JSON `data`."""
    return b"event: " + kind.encode() + b"\ndata: " + _encode(data) + b"\n\n"


def anthropic_error_response(err: ServingError) -> Response:
    """Anthropic's error body with the error's HTTP status (and `Retry-After` when the error passes)."""
    log_server_error(err)
    response = json_response(anthropic_error(err), err.status)
    if err.retry_after_s is not None:
        response.headers["retry-after"] = str(err.retry_after_s)
    return response


class AnthropicSSE(SSEResponse):
    """Streams Anthropic events as the OpenAI streams go (batched writes, cancel on disconnect): a ping event
    after keepalive_s of silence, an `error` event if the stream fails after it began, and no [DONE]."""

    keepalive_event = PING

    def __init__(self, first: tuple[str, dict], events: AsyncGenerator[tuple[str, dict], None],
                 tracker: StreamTracker, keepalive_s: float):
        super().__init__(None, events, tracker, False, keepalive_s)
        self.first_event = first

    async def _produce(self) -> str:
        tracker, pending, ready = self.tracker, self.pending, self.ready
        status = "success"
        try:
            pending.append(sse_event(*self.first_event))
            ready.set()
            async for kind, data in self.rest:
                if kind == "content_block_delta":
                    tracker.on_content()
                elif kind == "message_delta":
                    usage = data["usage"]
                    tracker.on_usage({"prompt_tokens": usage["input_tokens"],
                                      "completion_tokens": usage["output_tokens"]})
                pending.append(sse_event(kind, data))
                ready.set()
        except Exception as exc:  # the stream had begun: report in-band, as Anthropic does
            status = "error"
            err = as_serving_error(exc)
            log_server_error(err, "stream")
            pending.append(sse_event("error", anthropic_error(err)))
        ready.set()
        return status


class MessagesAPI:
    """The two routes, over a frontend's manager, metrics, keep-alive and body reader (auth, size, JSON)."""

    def __init__(self, frontend: OpenAIFrontend, read_body: Callable[[Request], Awaitable[dict]]):
        self.frontend, self.read_body = frontend, read_body

    def routes(self) -> list[Route]:
        return [Route(ENDPOINT, self.create, methods=["POST"]),
                Route(ENDPOINT + "/count_tokens", self.count_tokens, methods=["POST"])]

    def _metric_model(self, name: str) -> str:
        manager = self.frontend.manager
        return name if name in manager.models or name in manager.aliases else ""

    async def create(self, request: Request) -> Any:
        """POST /v1/messages: a Message, or its events when `stream` is true."""
        frontend = self.frontend
        try:
            req = parse_messages_request(await self.read_body(request))
            chat = to_chat_request(req)
        except ServingError as err:
            frontend.metrics.count_request("", ENDPOINT, "unknown", "error")
            return anthropic_error_response(err)
        tracker = StreamTracker(frontend.metrics, self._metric_model(req.model), ENDPOINT,
                                "stream" if req.stream else "unary")
        if req.stream:
            try:
                input_tokens = await self._input_tokens(chat)
            except Exception as exc:
                tracker.finish("error")
                return anthropic_error_response(as_serving_error(exc))
            events = message_events(frontend.manager.chat_completion_stream(with_usage(chat)), req, input_tokens)
            try:
                first = await events.__anext__()   # errors before streaming get a proper status
            except Exception as exc:
                await events.aclose()
                tracker.finish("error")
                return anthropic_error_response(as_serving_error(exc))
            return AnthropicSSE(first, events, tracker, frontend.keepalive_s)

        async def whole() -> Response:
            try:
                result = await frontend.manager.chat_completion(chat)
            except Exception as exc:
                return anthropic_error_response(as_serving_error(exc))
            tracker.on_content()
            tracker.on_usage(result.get("usage"))
            return json_response(to_message(result, req))
        return CancellableJSON(whole, tracker)

    async def _input_tokens(self, chat: dict) -> int:
        """The prompt's tokens for message_start, as Anthropic sends them there: a second templating that the
        manager's prompt cache answers; a large prompt is not tokenized twice (0, message_delta has the count)."""
        if text_size(chat["messages"]) >= LARGE_TEXT:
            return 0
        _, _, _, prompt_ids, _ = await self.frontend.manager.prepare(chat, "chat")
        return len(prompt_ids)

    async def count_tokens(self, request: Request) -> Response:
        """POST /v1/messages/count_tokens: the prompt's tokens as the model would see them (template, tools, the
        tool_choice instruction), counted like /tokenize, so a prompt over the context is counted, not refused."""
        try:
            req = parse_messages_request(await self.read_body(request), count_only=True)
            chat = to_chat_request(req)
            parse_chat_request(chat)   # what the same messages would be refused for
            hint = tool_choice_hint(chat.get("tool_choice"))
            messages = [{"role": "system", "content": hint}, *chat["messages"]] if hint else chat["messages"]
            counted = await tokenize_body(self.frontend.manager, {"model": req.model, "messages": messages,
                                                                  "tools": chat.get("tools")})
        except Exception as exc:
            return anthropic_error_response(as_serving_error(exc))
        return json_response({"input_tokens": counted["count"]})
