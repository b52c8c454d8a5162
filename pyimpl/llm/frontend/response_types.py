"""The OpenAI response types as msgspec Structs: the documented shape of every answer the frontend sends.

The hot path builds plain dicts (pyimpl.llm.frontend.openai_stream, model_manager) and encodes them with
msgspec; these types are the contract those dicts follow (tests convert real answers into them),
and /openapi.json is generated from them.
"""
from __future__ import annotations

from typing import Literal, Optional, Union

import msgspec

ChatFinishReason = Literal["stop", "length", "tool_calls"]
CompletionFinishReason = Literal["stop", "length"]


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
    type: Literal["function"] = "function"


class ToolCallDelta(ToolCall, kw_only=True):
    """A whole tool call in one chunk (the frontend parses calls before sending them), with its index."""

    index: int


class TopLogprob(msgspec.Struct):
    token: str
    logprob: float
    bytes: Optional[list[int]]


class TokenLogprob(msgspec.Struct):
    token: str
    logprob: float
    bytes: Optional[list[int]]
    top_logprobs: list[TopLogprob]


class ChatLogprobs(msgspec.Struct):
    content: Optional[list[TokenLogprob]]


class ResponseMessage(msgspec.Struct, omit_defaults=True):
    role: Literal["assistant"]
    content: Optional[str]
    reasoning_content: Optional[str] = None
    tool_calls: Optional[list[ToolCall]] = None


class ChatChoice(msgspec.Struct):
    index: int
    message: ResponseMessage
    logprobs: Optional[ChatLogprobs]
    finish_reason: Optional[ChatFinishReason]


class ChatCompletion(msgspec.Struct):
    """The non-streaming chat answer."""

    id: str
    object: Literal["chat.completion"]
    created: int
    model: str
    choices: list[ChatChoice]
    usage: Optional[Usage]


class ChunkDelta(msgspec.Struct, omit_defaults=True):
    role: Optional[Literal["assistant"]] = None
    content: Optional[str] = None
    reasoning_content: Optional[str] = None
    tool_calls: Optional[list[ToolCallDelta]] = None


class ChunkChoice(msgspec.Struct):
    index: int
    delta: ChunkDelta
    logprobs: Optional[ChatLogprobs]
    finish_reason: Optional[ChatFinishReason]


class ChatCompletionChunk(msgspec.Struct, omit_defaults=True):
    """The data of one SSE event of a streamed chat answer (`choices` empty, `usage` set on the last)."""

    id: str
    object: Literal["chat.completion.chunk"]
    created: int
    model: str
    choices: list[ChunkChoice]
    usage: Optional[Usage] = None


class CompletionLogprobs(msgspec.Struct):
    tokens: list[str]
    token_logprobs: list[Optional[float]]
    text_offset: list[int]           # where each token's text starts in the choice's text
    top_logprobs: list[Optional[dict[str, float]]]


class CompletionChoice(msgspec.Struct):
    index: int
    text: str
    logprobs: Optional[CompletionLogprobs]
    finish_reason: Optional[CompletionFinishReason]


class Completion(msgspec.Struct, omit_defaults=True):
    """A text_completion: the whole answer, or the data of one SSE event of a streamed one."""

    id: str
    object: Literal["text_completion"]
    created: int
    model: str
    choices: list[CompletionChoice]
    usage: Optional[Usage] = None


class Embedding(msgspec.Struct):
    index: int
    embedding: Union[list[float], str]  # floats, or base64 of little-endian float32
    object: Literal["embedding"] = "embedding"


class EmbeddingUsage(msgspec.Struct):
    prompt_tokens: int
    total_tokens: int


class EmbeddingList(msgspec.Struct):
    data: list[Embedding]
    model: str
    usage: EmbeddingUsage
    object: Literal["list"] = "list"


class Model(msgspec.Struct):
    id: str
    created: int
    owned_by: str
    object: Literal["model"] = "model"


class ModelList(msgspec.Struct):
    data: list[Model]
    object: Literal["list"] = "list"


class Health(msgspec.Struct):
    """GET /health: `healthy` once a model is served; worker instances per model."""

    status: Literal["healthy", "no_models"]
    models: list[str]
    instances: dict[str, int]


class Live(msgspec.Struct):
    status: Literal["live"]


class Version(msgspec.Struct):
    """GET /version: the frontend's package version."""

    version: str


class TokenizeResponse(msgspec.Struct, omit_defaults=True):
    """POST /tokenize: the token ids, their count and the model's context length (`token_strs` when asked)."""

    count: int
    max_model_len: int
    tokens: list[int]
    token_strs: Optional[list[str]] = None


class DetokenizeResponse(msgspec.Struct):
    """POST /detokenize: the text of the token ids."""

    prompt: str


class ErrorDetail(msgspec.Struct):
    message: str
    type: str
    param: Optional[str]
    code: Optional[str]


class ErrorResponse(msgspec.Struct):
    """OpenAI's error envelope; `param` names the offending field of a 400."""

    error: ErrorDetail


RESPONSE_TYPES = (ChatCompletion, ChatCompletionChunk, Completion, EmbeddingList, ModelList, Health, Live,
                  ErrorResponse)
