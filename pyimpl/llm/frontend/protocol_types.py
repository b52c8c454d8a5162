"""The OpenAI request types as msgspec Structs: the one definition of what a request may hold.

`pyimpl.llm.frontend.protocols` validates every body with them (types, ranges, enums, required fields) and
/openapi.json is generated from them, so the document cannot drift from what the server accepts.
Unknown top-level fields are ignored, as OpenAI does. Adding a route's request: a Struct here.
"""
from __future__ import annotations

from typing import Annotated, Literal, Optional, Union, get_args

import msgspec
from msgspec import Meta

MAX_N = 16
MAX_STOP_STRINGS = 16
MAX_TOP_LOGPROBS = 20
MAX_COMPLETION_LOGPROBS = 5
MAX_TOKENS_LIMIT = 1 << 31
MAX_SEED = (1 << 64) - 1
MAX_TOKEN_ID = (1 << 31) - 1

NonEmptyStr = Annotated[str, Meta(min_length=1)]
TokenId = Annotated[int, Meta(ge=0, le=MAX_TOKEN_ID)]  # the model may allow fewer (a 400 at the model)
MaxTokens = Annotated[int, Meta(ge=1, le=MAX_TOKENS_LIMIT)]


class TextPart(msgspec.Struct, kw_only=True):
    """A text content part (the only part kind the models served here read)."""

    type: Literal["text"]
    text: str


Content = Union[str, list[TextPart]]


class _MessageBase(msgspec.Struct, tag_field="role", kw_only=True, omit_defaults=True):
    name: Optional[str] = None


class SystemMessage(_MessageBase, tag="system"):
    content: Content


class DeveloperMessage(_MessageBase, tag="developer"):
    content: Content


class UserMessage(_MessageBase, tag="user"):
    content: Content


class AssistantMessage(_MessageBase, tag="assistant"):
    """An earlier assistant turn: content, tool calls, or both (one of them must be there)."""

    content: Optional[Content] = None
    tool_calls: Optional[list[dict]] = None
    reasoning_content: Optional[str] = None


class ToolMessage(_MessageBase, tag="tool"):
    content: Content
    tool_call_id: Optional[str] = None


Message = Union[SystemMessage, DeveloperMessage, UserMessage, AssistantMessage, ToolMessage]
CHAT_ROLES: tuple[str, ...] = tuple(t.__struct_config__.tag for t in get_args(Message))


class StreamOptions(msgspec.Struct, kw_only=True):
    include_usage: Optional[bool] = None


class FunctionDefinition(msgspec.Struct, kw_only=True):
    name: str
    description: Optional[str] = None
    parameters: Optional[dict] = None
    strict: Optional[bool] = None


class Tool(msgspec.Struct, kw_only=True):
    type: Literal["function"]
    function: FunctionDefinition


class FunctionName(msgspec.Struct, kw_only=True):
    name: str


class NamedToolChoice(msgspec.Struct, kw_only=True):
    """Call this function (it must be one of `tools`)."""

    function: FunctionName
    type: Literal["function"] = "function"


class ResponseFormat(msgspec.Struct, kw_only=True):
    type: Literal["text", "json_object", "json_schema"]
    json_schema: Optional[dict] = None


class NvExt(msgspec.Struct, kw_only=True):
    """Dynamo's request extension: `extra_fields` asks for response fields ("worker_id": the instance that
    served it), `backend_instance_id` pins the request to one worker instance."""

    extra_fields: Optional[list[str]] = None
    backend_instance_id: Optional[Annotated[int, Meta(ge=0, le=(1 << 63) - 1)]] = None  # instance ids are 63-bit


class _GenerationRequest(msgspec.Struct, kw_only=True):
    """Fields shared by chat and text completions (null means the default)."""

    model: NonEmptyStr
    stream: Optional[bool] = None
    stream_options: Optional[StreamOptions] = None
    n: Optional[Annotated[int, Meta(ge=1, le=MAX_N)]] = None
    max_tokens: Optional[MaxTokens] = None
    min_tokens: Optional[Annotated[int, Meta(ge=0, le=MAX_TOKENS_LIMIT)]] = None
    temperature: Optional[Annotated[float, Meta(ge=0.0, le=2.0)]] = None
    top_p: Optional[Annotated[float, Meta(gt=0.0, le=1.0)]] = None
    top_k: Optional[Annotated[int, Meta(ge=-1, le=MAX_TOKENS_LIMIT)]] = None
    min_p: Optional[Annotated[float, Meta(ge=0.0, le=1.0)]] = None
    repetition_penalty: Optional[Annotated[float, Meta(ge=1e-6, le=10.0)]] = None
    presence_penalty: Optional[Annotated[float, Meta(ge=-2.0, le=2.0)]] = None
    frequency_penalty: Optional[Annotated[float, Meta(ge=-2.0, le=2.0)]] = None
    seed: Optional[Annotated[int, Meta(ge=-(1 << 63), extra_json_schema={"maximum": MAX_SEED})]] = None
    stop: Union[NonEmptyStr, Annotated[list[NonEmptyStr], Meta(max_length=MAX_STOP_STRINGS)], None] = None
    stop_token_ids: Optional[list[TokenId]] = None
    ignore_eos: Optional[bool] = None
    include_stop_str_in_output: Optional[bool] = None
    skip_special_tokens: Optional[bool] = None
    logit_bias: Optional[dict[str, Annotated[float, Meta(ge=-100.0, le=100.0)]]] = None  # token id -> bias
    nvext: Optional[NvExt] = None


SAMPLING_FIELDS = ("temperature", "top_p", "min_p", "presence_penalty", "frequency_penalty", "repetition_penalty",
                   "top_k", "seed")

# Sampling parameters of OpenAI, vLLM or llama.cpp that no engine here implements. Unknown top-level fields are
# ignored (as OpenAI does), but one of these changes what is generated: it is a 400 naming it, never a silent drop.
UNSUPPORTED_SAMPLING_FIELDS = (
    "best_of", "use_beam_search", "length_penalty", "early_stopping", "typical_p", "prompt_logprobs", "bad_words",
    "allowed_token_ids", "truncate_prompt_tokens", "guided_json", "guided_regex", "guided_choice", "guided_grammar",
    "structural_tag", "top_a", "tfs_z", "mirostat", "mirostat_tau", "mirostat_eta", "dynatemp_range",
    "dynatemp_exponent", "repeat_penalty", "repeat_last_n", "penalize_nl", "dry_multiplier", "dry_base",
    "xtc_probability", "xtc_threshold", "n_probs", "spaces_between_special_tokens", "prediction")


class ChatCompletionRequest(_GenerationRequest, kw_only=True):
    """POST /v1/chat/completions."""

    messages: Annotated[list[Message], Meta(min_length=1)]
    max_completion_tokens: Optional[MaxTokens] = None
    tools: Optional[list[Tool]] = None
    tool_choice: Union[Literal["none", "auto", "required"], NamedToolChoice, None] = None
    response_format: Optional[ResponseFormat] = None
    logprobs: Optional[bool] = None
    top_logprobs: Optional[Annotated[int, Meta(ge=0, le=MAX_TOP_LOGPROBS)]] = None


Prompt = Union[NonEmptyStr, Annotated[list[Union[TokenId, NonEmptyStr, Annotated[list[TokenId], Meta(min_length=1)]]],
                                      Meta(min_length=1)]]


class CompletionRequest(_GenerationRequest, kw_only=True):
    """POST /v1/completions: one prompt, text or token ids (or a one-element list of either)."""

    prompt: Prompt
    max_tokens: Optional[Annotated[int, Meta(ge=0, le=MAX_TOKENS_LIMIT)]] = None   # 0: echo only (scoring)
    logprobs: Optional[Annotated[int, Meta(ge=0, le=MAX_COMPLETION_LOGPROBS)]] = None
    echo: Optional[bool] = None
    suffix: Optional[str] = None   # fill-in-the-middle: no model served here does it, so a non-empty one is a 400


class EmbeddingRequest(msgspec.Struct, kw_only=True):
    """POST /v1/embeddings."""

    model: NonEmptyStr
    input: Union[str, Annotated[list[str], Meta(min_length=1)]]
    encoding_format: Optional[Literal["float", "base64"]] = None
    dimensions: Optional[Annotated[int, Meta(ge=1)]] = None   # only the model's own size (no truncation)


class TokenizeRequest(msgspec.Struct, kw_only=True):
    """POST /tokenize (vLLM's shape): a text `prompt`, or chat `messages` rendered with the model's template."""

    model: Optional[NonEmptyStr] = None   # may be left out when one model is served
    prompt: Optional[str] = None
    messages: Optional[Annotated[list[Message], Meta(min_length=1)]] = None
    tools: Optional[list[Tool]] = None
    add_generation_prompt: Optional[bool] = None   # messages: default true
    add_special_tokens: Optional[bool] = None      # default true for a prompt, false for messages (the template adds them)
    return_token_strs: Optional[bool] = None


class DetokenizeRequest(msgspec.Struct, kw_only=True):
    """POST /detokenize (vLLM's shape): token ids back to text."""

    model: Optional[NonEmptyStr] = None
    tokens: list[TokenId]


REQUEST_TYPES = (ChatCompletionRequest, CompletionRequest, EmbeddingRequest, TokenizeRequest, DetokenizeRequest)


# The rules spanning fields (checked in pyimpl.llm.frontend.protocols), as JSON Schema merged into the document's
# component of that name: msgspec types cannot state them. Not expressible, so only in the 400's description:
# a named tool_choice must name one of `tools`; min_tokens <= max_tokens; prompt + max_tokens within the context.
_NOT_NULL = {"not": {"type": "null"}}
CROSS_FIELD_SCHEMA: dict[str, dict] = {
    "TokenizeRequest": {"oneOf": [{"required": ["prompt"], "properties": {"prompt": {"type": "string"}}},
                                  {"required": ["messages"], "properties": {"messages": {"type": "array"}}}]},
    "AssistantMessage": {"anyOf": [
        {"required": ["content"], "properties": {"content": _NOT_NULL}},
        {"required": ["tool_calls"], "properties": {"tool_calls": {"type": "array", "minItems": 1}}}]},
    "ChatCompletionRequest": {"allOf": [
        {"if": {"required": ["tool_choice"], "properties": {"tool_choice": {"not": {"enum": ["none", None]}}}},
         "then": {"required": ["tools"], "properties": {"tools": {"type": "array", "minItems": 1}}}},
        {"if": {"required": ["top_logprobs"], "properties": {"top_logprobs": {"type": "integer", "minimum": 1}}},
         "then": {"required": ["logprobs"], "properties": {"logprobs": {"const": True}}}}]},
    "CompletionRequest": {"properties": {"prompt": {"anyOf": [  # one prompt: text or token ids
        {"type": "string", "minLength": 1},
        {"type": "array", "minItems": 1, "items": {"type": "integer", "minimum": 0}},
        {"type": "array", "minItems": 1, "maxItems": 1, "items": {"anyOf": [
            {"type": "string", "minLength": 1},
            {"type": "array", "minItems": 1, "items": {"type": "integer", "minimum": 0}}]}}]}}},
}

