"""The OpenAI wire types as msgspec Structs: the documented shape of requests and responses.

The hot path keeps plain dicts (validated by pyimpl.llm.protocols, encoded by msgspec); these
types are the contract those dicts follow, and /openapi.json is generated from them.
"""
from __future__ import annotations

from typing import Any, Literal, Optional, Union

import msgspec


class Message(msgspec.Struct, omit_defaults=True):
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: Union[str, list[dict], None] = None
    name: Optional[str] = None
    tool_calls: Optional[list[dict]] = None
    tool_call_id: Optional[str] = None


class StreamOptions(msgspec.Struct, omit_defaults=True):
    include_usage: bool = False


class ResponseFormat(msgspec.Struct, omit_defaults=True):
    type: Literal["text", "json_object", "json_schema"]
    json_schema: Optional[dict] = None


class _Sampling(msgspec.Struct, omit_defaults=True, kw_only=True):
    model: str
    stream: bool = False
    stream_options: Optional[StreamOptions] = None
    n: int = 1
    max_tokens: Optional[int] = None
    min_tokens: int = 0
    temperature: Optional[float] = None
    top_p: Optional[float] = None
    top_k: Optional[int] = None
    min_p: Optional[float] = None
    repetition_penalty: Optional[float] = None
    presence_penalty: Optional[float] = None
    frequency_penalty: Optional[float] = None
    seed: Optional[int] = None
    stop: Union[str, list[str], None] = None
    stop_token_ids: Optional[list[int]] = None
    ignore_eos: bool = False
    include_stop_str_in_output: bool = False
    skip_special_tokens: bool = True


class ChatCompletionRequest(_Sampling, kw_only=True):
    """POST /v1/chat/completions."""

    messages: list[Message]
    max_completion_tokens: Optional[int] = None
    tools: Optional[list[dict]] = None
    tool_choice: Union[Literal["none", "auto", "required"], dict, None] = None
    response_format: Optional[ResponseFormat] = None
    logprobs: bool = False
    top_logprobs: Optional[int] = None


class CompletionRequest(_Sampling, kw_only=True):
    """POST /v1/completions (one prompt: text or token ids)."""

    prompt: Union[str, list[Union[int, str, list[int]]]]  # text, token ids, or a one-element list of either
    logprobs: Optional[int] = None
    echo: bool = False


class EmbeddingRequest(msgspec.Struct, omit_defaults=True):
    """POST /v1/embeddings."""

    model: str
    input: Union[str, list[str]]
    encoding_format: Literal["float", "base64"] = "float"


class Usage(msgspec.Struct):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class ToolCallFunction(msgspec.Struct):
    name: str
    arguments: str


class ToolCall(msgspec.Struct):
    id: str
    function: ToolCallFunction
    type: str = "function"


class AssistantMessage(msgspec.Struct, omit_defaults=True):
    role: str
    content: Optional[str]
    reasoning_content: Optional[str] = None
    tool_calls: Optional[list[ToolCall]] = None


class ChatChoice(msgspec.Struct):
    index: int
    message: AssistantMessage
    logprobs: Optional[dict]
    finish_reason: Optional[Literal["stop", "length", "tool_calls"]]


class ChatCompletion(msgspec.Struct):
    """The non-streaming chat answer."""

    id: str
    object: Literal["chat.completion"]
    created: int
    model: str
    choices: list[ChatChoice]
    usage: Optional[Usage]


class ChunkDelta(msgspec.Struct, omit_defaults=True):
    role: Optional[str] = None
    content: Optional[str] = None
    reasoning_content: Optional[str] = None
    tool_calls: Optional[list[dict]] = None


class ChunkChoice(msgspec.Struct):
    index: int
    delta: ChunkDelta
    logprobs: Optional[dict]
    finish_reason: Optional[str]


class ChatCompletionChunk(msgspec.Struct, omit_defaults=True):
    """One SSE event of a streamed chat answer (`choices` empty and `usage` set on the usage chunk)."""

    id: str
    object: Literal["chat.completion.chunk"]
    created: int
    model: str
    choices: list[ChunkChoice]
    usage: Optional[Usage] = None


class CompletionChoice(msgspec.Struct):
    index: int
    text: str
    logprobs: Optional[dict]
    finish_reason: Optional[str]


class Completion(msgspec.Struct, omit_defaults=True):
    """A text_completion (whole, or one streamed chunk)."""

    id: str
    object: Literal["text_completion"]
    created: int
    model: str
    choices: list[CompletionChoice]
    usage: Optional[Usage] = None


class Embedding(msgspec.Struct):
    index: int
    embedding: Union[list[float], str]
    object: str = "embedding"


class EmbeddingList(msgspec.Struct):
    data: list[Embedding]
    model: str
    usage: dict
    object: str = "list"


class Model(msgspec.Struct):
    id: str
    created: int
    owned_by: str
    object: str = "model"


class ModelList(msgspec.Struct):
    data: list[Model]
    object: str = "list"


class ErrorDetail(msgspec.Struct):
    message: str
    type: str
    param: Optional[str]
    code: Any


class ErrorResponse(msgspec.Struct):
    """OpenAI's error envelope."""

    error: ErrorDetail


SCHEMA_TYPES = (ChatCompletionRequest, CompletionRequest, EmbeddingRequest, ChatCompletion, ChatCompletionChunk,
                Completion, EmbeddingList, ModelList, ErrorResponse)
