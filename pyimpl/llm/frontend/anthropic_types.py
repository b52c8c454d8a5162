"""Anthropic Messages API types: what /v1/messages validates requests with and answers in (and what
/openapi.json documents). Names carry an `Anthropic` prefix so they never clash with the OpenAI components."""
from __future__ import annotations

from typing import Annotated, Literal, Optional, Union

import msgspec
from msgspec import Meta

from pyimpl.llm.frontend.protocol_types import MAX_TOKENS_LIMIT

NonEmptyStr = Annotated[str, Meta(min_length=1)]
MAX_STOP_SEQUENCES = 16


class AnthropicTextBlock(msgspec.Struct, tag_field="type", tag="text", kw_only=True):
    text: str


class AnthropicToolUseBlock(msgspec.Struct, tag_field="type", tag="tool_use", kw_only=True):
    id: NonEmptyStr
    name: NonEmptyStr
    input: dict


class AnthropicThinkingBlock(msgspec.Struct, tag_field="type", tag="thinking", kw_only=True):
    """The model's reasoning (from the worker's reasoning parser); a client's echo of it is passed back."""

    thinking: str
    signature: str = ""


class AnthropicToolResultBlock(msgspec.Struct, tag_field="type", tag="tool_result", kw_only=True):
    tool_use_id: NonEmptyStr
    content: Union[str, list[AnthropicTextBlock]] = ""
    is_error: bool = False


OutputBlock = Union[AnthropicTextBlock, AnthropicToolUseBlock, AnthropicThinkingBlock]


class AnthropicUserMessage(msgspec.Struct, tag_field="role", tag="user", kw_only=True):
    """A user turn: text, and the results of the tools the assistant's previous turn called."""

    content: Union[str, list[Union[AnthropicTextBlock, AnthropicToolResultBlock]]]


class AnthropicAssistantMessage(msgspec.Struct, tag_field="role", tag="assistant", kw_only=True):
    """An assistant turn: text, thinking and the tool calls it made."""

    content: Union[str, list[OutputBlock]]


AnthropicInputMessage = Union[AnthropicUserMessage, AnthropicAssistantMessage]


class AnthropicTool(msgspec.Struct, kw_only=True):
    name: Annotated[str, Meta(min_length=1, max_length=128)]
    input_schema: dict
    description: Optional[str] = None


class AnthropicToolChoice(msgspec.Struct, kw_only=True):
    """auto: the model decides; any: it must call a tool; tool: it must call `name`; none: no tool call."""

    type: Literal["auto", "any", "tool", "none"]
    name: Optional[NonEmptyStr] = None
    disable_parallel_tool_use: Optional[bool] = None


class AnthropicCountTokensRequest(msgspec.Struct, kw_only=True):
    model: str
    messages: Annotated[list[AnthropicInputMessage], Meta(min_length=1)]
    system: Union[str, list[AnthropicTextBlock], None] = None
    tools: Optional[list[AnthropicTool]] = None
    tool_choice: Optional[AnthropicToolChoice] = None


class AnthropicMessagesRequest(AnthropicCountTokensRequest, kw_only=True):
    max_tokens: Annotated[int, Meta(ge=1, le=MAX_TOKENS_LIMIT)]
    stop_sequences: Optional[Annotated[list[NonEmptyStr], Meta(max_length=MAX_STOP_SEQUENCES)]] = None
    temperature: Optional[Annotated[float, Meta(ge=0.0, le=1.0)]] = None
    top_p: Optional[Annotated[float, Meta(gt=0.0, le=1.0)]] = None
    top_k: Optional[Annotated[int, Meta(ge=1, le=MAX_TOKENS_LIMIT)]] = None
    stream: Optional[bool] = None
    metadata: Optional[dict] = None


StopReason = Literal["end_turn", "max_tokens", "stop_sequence", "tool_use"]


class AnthropicUsage(msgspec.Struct, kw_only=True):
    input_tokens: int
    output_tokens: int


class AnthropicMessage(msgspec.Struct, kw_only=True):
    id: str
    type: Literal["message"]
    role: Literal["assistant"]
    content: list[OutputBlock]
    model: str
    stop_reason: Optional[StopReason]
    stop_sequence: Optional[str]
    usage: AnthropicUsage


class AnthropicTokenCount(msgspec.Struct, kw_only=True):
    input_tokens: int


class AnthropicErrorDetail(msgspec.Struct, kw_only=True):
    type: str
    message: str


class AnthropicErrorResponse(msgspec.Struct, tag_field="type", tag="error", kw_only=True):
    """{"type": "error", "error": {...}}: the body of every error answer, and a failed stream's last event."""

    error: AnthropicErrorDetail


# ---- stream events (SSE `event: <type>` + `data: <event as JSON>`) ---------------------------------------

class AnthropicTextDelta(msgspec.Struct, tag_field="type", tag="text_delta", kw_only=True):
    text: str


class AnthropicInputJsonDelta(msgspec.Struct, tag_field="type", tag="input_json_delta", kw_only=True):
    partial_json: str


class AnthropicThinkingDelta(msgspec.Struct, tag_field="type", tag="thinking_delta", kw_only=True):
    thinking: str


class AnthropicMessageStart(msgspec.Struct, tag_field="type", tag="message_start", kw_only=True):
    message: AnthropicMessage


class AnthropicContentBlockStart(msgspec.Struct, tag_field="type", tag="content_block_start", kw_only=True):
    index: int
    content_block: OutputBlock


class AnthropicPing(msgspec.Struct, tag_field="type", tag="ping", kw_only=True):
    pass


class AnthropicContentBlockDelta(msgspec.Struct, tag_field="type", tag="content_block_delta", kw_only=True):
    index: int
    delta: Union[AnthropicTextDelta, AnthropicInputJsonDelta, AnthropicThinkingDelta]


class AnthropicContentBlockStop(msgspec.Struct, tag_field="type", tag="content_block_stop", kw_only=True):
    index: int


class AnthropicStopDelta(msgspec.Struct, kw_only=True):
    stop_reason: Optional[StopReason]
    stop_sequence: Optional[str]


class AnthropicMessageDelta(msgspec.Struct, tag_field="type", tag="message_delta", kw_only=True):
    delta: AnthropicStopDelta
    usage: AnthropicUsage


class AnthropicMessageStop(msgspec.Struct, tag_field="type", tag="message_stop", kw_only=True):
    pass


AnthropicStreamEvent = Union[AnthropicMessageStart, AnthropicContentBlockStart, AnthropicPing,
                             AnthropicContentBlockDelta, AnthropicContentBlockStop, AnthropicMessageDelta,
                             AnthropicMessageStop, AnthropicErrorResponse]
