"""Anthropic Messages on the chat path: a Messages request becomes a chat request, and the chat answer (whole
or streamed chunks) becomes a Message or Anthropic's stream events. No HTTP here (see http/messages_api.py)."""
from __future__ import annotations

import json
import secrets
from typing import Any, AsyncGenerator, AsyncIterator

import msgspec

from pyimpl.llm.errors import InvalidRequestError, ServingError
from pyimpl.llm.frontend.anthropic_types import (AnthropicAssistantMessage, AnthropicCountTokensRequest,
                                                 AnthropicInputMessage, AnthropicMessagesRequest, AnthropicTextBlock,
                                                 AnthropicThinkingBlock, AnthropicToolUseBlock)

STOP_REASONS = {"length": "max_tokens", "tool_calls": "tool_use", "stop": "end_turn", "cancelled": "end_turn"}
ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
               404: "not_found_error", 413: "request_too_large", 429: "rate_limit_error", 503: "overloaded_error"}


def parse_messages_request(body: Any,
                           count_only: bool = False) -> AnthropicMessagesRequest | AnthropicCountTokensRequest:
    """The typed request; a wrong field is a 400 naming where it is (e.g. `$.max_tokens`)."""
    kind = AnthropicCountTokensRequest if count_only else AnthropicMessagesRequest
    try:
        req = msgspec.convert(body, kind)
    except msgspec.ValidationError as exc:
        raise InvalidRequestError(str(exc), None) from exc
    if req.tool_choice is not None and req.tool_choice.type == "tool" and not req.tool_choice.name:
        raise InvalidRequestError("tool_choice.name: required when tool_choice.type is 'tool'", "tool_choice")
    return req


def anthropic_error(err: ServingError) -> dict:
    """Anthropic's error body for a serving error: {"type": "error", "error": {"type", "message"}}."""
    return {"type": "error", "error": {"type": ERROR_TYPES.get(err.status, "api_error"), "message": err.message}}


def _text(content: str | list[AnthropicTextBlock]) -> str:
    return content if isinstance(content, str) else "".join(block.text for block in content)


def _chat_messages(message: AnthropicInputMessage) -> list[dict]:
    """One Anthropic message as chat messages: tool_result blocks become `tool` messages in place; a user's text
    blocks between them one user message; an assistant's text, thinking and tool_use blocks one assistant message."""
    role = "assistant" if isinstance(message, AnthropicAssistantMessage) else "user"
    if isinstance(message.content, str):
        return [{"role": role, "content": message.content}]
    if role == "assistant":
        texts = [b.text for b in message.content if isinstance(b, AnthropicTextBlock)]
        thinking = [b.thinking for b in message.content if isinstance(b, AnthropicThinkingBlock)]
        calls = [{"id": b.id, "type": "function", "function": {"name": b.name, "arguments": json.dumps(b.input)}}
                 for b in message.content if isinstance(b, AnthropicToolUseBlock)]
        out: dict = {"role": "assistant", "content": "".join(texts) if texts or not calls else None}
        if thinking:
            out["reasoning_content"] = "".join(thinking)
        if calls:
            out["tool_calls"] = calls
        return [out]
    out_messages: list[dict] = []
    parts: list[dict] = []
    for block in message.content:
        if isinstance(block, AnthropicTextBlock):
            parts.append({"type": "text", "text": block.text})
            continue
        if parts:
            out_messages.append({"role": "user", "content": parts})
            parts = []
        text = _text(block.content)
        out_messages.append({"role": "tool", "tool_call_id": block.tool_use_id,
                             "content": f"Error: {text}" if block.is_error else text})
    if parts or not out_messages:
        out_messages.append({"role": "user", "content": parts})
    return out_messages


def _tool_choice(req: AnthropicCountTokensRequest) -> Any:
    choice = req.tool_choice
    if choice is None:
        return None
    if choice.type == "tool":
        return {"type": "function", "function": {"name": choice.name}}
    return {"auto": "auto", "any": "required", "none": "none"}[choice.type]


def to_chat_request(req: AnthropicMessagesRequest | AnthropicCountTokensRequest) -> dict:
    """The chat-completions body that asks the same of the model (stop sequences are kept in the output so the
    answer can say which one matched; `to_message` / `MessageEvents` cut them off again)."""
    messages: list[dict] = []
    if req.system:
        messages.append({"role": "system", "content": _text(req.system)})
    for message in req.messages:
        messages.extend(_chat_messages(message))
    body: dict = {"model": req.model, "messages": messages}
    if req.tools:
        body["tools"] = [{"type": "function", "function": {"name": t.name, "parameters": t.input_schema,
                                                           **({"description": t.description} if t.description else {})}}
                         for t in req.tools]
    choice = _tool_choice(req)
    if choice is not None and (req.tools or choice == "none"):
        body["tool_choice"] = choice
    if isinstance(req, AnthropicMessagesRequest):
        body["max_tokens"] = req.max_tokens
        for name in ("temperature", "top_p", "top_k"):
            if getattr(req, name) is not None:
                body[name] = getattr(req, name)
        if req.stop_sequences:
            body["stop"], body["include_stop_str_in_output"] = list(req.stop_sequences), True
    return body


def _stop(finish_reason: str | None, text: str, stops: list[str] | None) -> tuple[str, str, str | None]:
    """(text without the matched stop sequence, stop_reason, stop_sequence); the matched one is the longest that
    ends the text (the stop-string matcher takes the earliest match, and its text ends where that match ends)."""
    if finish_reason == "stop":
        for stop in sorted(stops or (), key=len, reverse=True):
            if text.endswith(stop):
                return text[:-len(stop)], "stop_sequence", stop
    return text, STOP_REASONS.get(finish_reason or "stop", "end_turn"), None


def _max_tools(req: AnthropicMessagesRequest) -> int:
    """How many tool_use blocks an answer may hold: 1 with tool_choice.disable_parallel_tool_use, else any."""
    choice = req.tool_choice
    return 1 if choice is not None and choice.disable_parallel_tool_use else 1 << 30


def _tool_input(arguments: str) -> dict:
    """A tool call's arguments as the object Anthropic's `input` is (text that is not one is kept, not lost)."""
    try:
        value = json.loads(arguments) if arguments else {}
    except ValueError:
        return {"_arguments": arguments}
    return value if isinstance(value, dict) else {"_arguments": value}


def to_message(result: dict, req: AnthropicMessagesRequest) -> dict:
    """A whole chat.completion as an Anthropic Message."""
    choice = result["choices"][0]
    message = choice["message"]
    text, stop_reason, stop_sequence = _stop(choice["finish_reason"], message.get("content") or "",
                                             req.stop_sequences)
    content: list[dict] = []
    if message.get("reasoning_content"):
        content.append({"type": "thinking", "thinking": message["reasoning_content"], "signature": ""})
    if text:
        content.append({"type": "text", "text": text})
    for call in (message.get("tool_calls") or [])[:_max_tools(req)]:
        content.append({"type": "tool_use", "id": call["id"], "name": call["function"]["name"],
                        "input": _tool_input(call["function"]["arguments"])})
    usage = result.get("usage") or {}
    return {"id": "msg_" + result["id"].split("-", 1)[-1], "type": "message", "role": "assistant",
            "content": content, "model": req.model, "stop_reason": stop_reason, "stop_sequence": stop_sequence,
            "usage": {"input_tokens": usage.get("prompt_tokens", 0),
                      "output_tokens": usage.get("completion_tokens", 0)}}


class MessageEvents:
    """Chat chunks in, Anthropic stream events out as (event type, data): message_start, per block
    content_block_start / content_block_delta… / content_block_stop (a ping after the first start), then
    message_delta (stop_reason, usage) and message_stop."""

    def __init__(self, req: AnthropicMessagesRequest, input_tokens: int = 0):
        self.req, self.input_tokens = req, input_tokens
        self.block = -1            # index of the open content block (-1: none yet)
        self.kind: str | None = None
        self.tool_blocks: dict[int, int] = {}   # OpenAI tool call index -> content block index
        self.max_tools = _max_tools(req)
        self.finish: str | None = None
        self.usage: dict = {}
        self.pinged = False
        self.stop_sequence_hit: str | None = None

    def _open(self, block: dict) -> list[tuple[str, dict]]:
        events = self._close()
        self.block += 1
        self.kind = block["type"]
        events.append(("content_block_start", {"type": "content_block_start", "index": self.block,
                                               "content_block": block}))
        if not self.pinged:
            self.pinged = True
            events.append(("ping", {"type": "ping"}))
        return events

    def _close(self) -> list[tuple[str, dict]]:
        if self.kind is None:
            return []
        self.kind = None
        return [("content_block_stop", {"type": "content_block_stop", "index": self.block})]

    def _delta(self, index: int, delta: dict) -> tuple[str, dict]:
        return "content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta}

    def start(self, chunk_id: str) -> tuple[str, dict]:
        """message_start, with the prompt's tokens when known up front (message_delta always has them)."""
        return "message_start", {"type": "message_start", "message": {
            "id": "msg_" + chunk_id.split("-", 1)[-1], "type": "message", "role": "assistant", "content": [],
            "model": self.req.model, "stop_reason": None, "stop_sequence": None,
            "usage": {"input_tokens": self.input_tokens, "output_tokens": 0}}}

    def on_chunk(self, chunk: dict) -> list[tuple[str, dict]]:
        """The events one chat chunk makes (the usage chunk makes none; it is kept for message_delta)."""
        if not chunk["choices"]:
            self.usage = chunk.get("usage") or self.usage
            return []
        choice = chunk["choices"][0]
        delta = choice.get("delta") or {}
        events: list[tuple[str, dict]] = []
        self.finish = choice.get("finish_reason") or self.finish
        if delta.get("reasoning_content"):
            if self.kind != "thinking":
                events += self._open({"type": "thinking", "thinking": "", "signature": ""})
            events.append(self._delta(self.block, {"type": "thinking_delta", "thinking": delta["reasoning_content"]}))
        text = delta.get("content") or ""
        if self.finish == "stop" and text:
            text, _, self.stop_sequence_hit = _stop("stop", text, self.req.stop_sequences)
        if text:
            if self.kind != "text":
                events += self._open({"type": "text", "text": ""})
            events.append(self._delta(self.block, {"type": "text_delta", "text": text}))
        for call in delta.get("tool_calls") or ():
            function = call.get("function") or {}
            if call["index"] not in self.tool_blocks:
                if len(self.tool_blocks) >= self.max_tools:   # disable_parallel_tool_use: the first call only
                    continue
                events += self._open({"type": "tool_use", "id": call.get("id") or "",
                                      "name": function.get("name") or "", "input": {}})
                self.tool_blocks[call["index"]] = self.block
            if function.get("arguments"):
                events.append(self._delta(self.tool_blocks[call["index"]],
                                          {"type": "input_json_delta", "partial_json": function["arguments"]}))
        return events

    def end(self) -> list[tuple[str, dict]]:
        """The closing events: the open block's stop, message_delta and message_stop."""
        events = self._close()
        if not self.pinged:
            events.append(("ping", {"type": "ping"}))
        hit = self.stop_sequence_hit
        reason = "stop_sequence" if hit else STOP_REASONS.get(self.finish or "stop", "end_turn")
        usage = {"input_tokens": self.usage.get("prompt_tokens", 0),
                 "output_tokens": self.usage.get("completion_tokens", 0)}
        return events + [("message_delta", {"type": "message_delta",
                                            "delta": {"stop_reason": reason, "stop_sequence": hit}, "usage": usage}),
                         ("message_stop", {"type": "message_stop"})]


async def message_events(chunks: AsyncGenerator[dict, None],
                         req: AnthropicMessagesRequest, input_tokens: int = 0) -> AsyncIterator[tuple[str, dict]]:
    """Anthropic's stream events of a streamed chat answer (`chunks` must ask for the closing usage chunk);
    input_tokens: the prompt's tokens for message_start, if counted before."""
    events = MessageEvents(req, input_tokens)
    started = False
    try:
        async for chunk in chunks:
            if not started:
                started = True
                yield events.start(chunk["id"])
            for event in events.on_chunk(chunk):
                yield event
    finally:  # however the consumer leaves, the chat stream is closed (which cancels the worker request)
        await chunks.aclose()
    if not started:
        yield events.start(f"msg-{secrets.token_hex(12)}")
    for event in events.end():
        yield event
