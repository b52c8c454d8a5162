"""OpenAI request validation and conversion into the worker wire format.

Bodies are checked against the msgspec request types of `pyimpl.llm.frontend.protocol_types` (the same types
/openapi.json is generated from), then the rules that span fields; every rejection is an
InvalidRequestError naming the offending field. Messages, tools and formats stay plain dicts downstream.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import msgspec

from pyimpl.llm.errors import InvalidRequestError
from pyimpl.llm.frontend.prompt_input import guided_decoding
from pyimpl.llm.frontend.protocol_types import (CHAT_ROLES, MAX_N, MAX_SEED, MAX_STOP_STRINGS, MAX_TOKEN_ID,  # noqa: F401
                                                MAX_TOP_LOGPROBS, SAMPLING_FIELDS, UNSUPPORTED_SAMPLING_FIELDS,
                                                ChatCompletionRequest, CompletionRequest, EmbeddingRequest)

_UNSUPPORTED = frozenset(UNSUPPORTED_SAMPLING_FIELDS)
_MISSING = re.compile(r"Object missing required field `([^`]+)`")


@dataclass
class GenerationRequest:
    """A validated OpenAI request, independent of chat or completion."""

    kind: str                                   # "chat" | "completion"
    model: str
    messages: list[dict] | None = None          # chat
    prompt: str | list[int] | None = None        # completion: text or token ids
    tools: list[dict] | None = None
    tool_choice: Any = None
    response_format: dict | None = None
    stream: bool = False
    include_usage: bool = False
    n: int = 1
    max_tokens: int | None = None
    min_tokens: int = 0
    stop: list[str] = field(default_factory=list)
    stop_token_ids: list[int] = field(default_factory=list)
    ignore_eos: bool = False
    include_stop_str_in_output: bool = False
    skip_special_tokens: bool = True
    logprobs: bool = False
    top_logprobs: int = 0
    echo: bool = False
    echo_only: bool = False                     # completions max_tokens 0 with echo: the prompt (and its logprobs)
    sampling: dict = field(default_factory=dict)  # temperature, top_p, top_k, min_p, seed, penalties
    extra_fields: list[str] = field(default_factory=list)   # nvext.extra_fields ("worker_id")
    backend_instance_id: int | None = None      # nvext.backend_instance_id: the instance the request is pinned to


def _fail(message: str, param: str):
    raise InvalidRequestError(message, param)


def decode_body(body: Any, kind: type) -> Any:
    """`body` (a decoded JSON value) as the request Struct `kind`; a mismatch is a 400 naming the field."""
    if not isinstance(body, dict):
        _fail("request body must be a JSON object", "body")
    try:
        return msgspec.convert(body, kind)
    except msgspec.ValidationError as exc:
        text = str(exc)
        message, _, where = text.partition(" - at `$")
        param = where.rstrip("`").lstrip(".")
        missing = _MISSING.match(message)
        if missing:
            param = f"{param}.{missing.group(1)}" if param else missing.group(1)
        param = param or "body"
        raise InvalidRequestError(f"'{param}': {message}", param) from None


def _flag(value: bool | None, default: bool = False) -> bool:
    return default if value is None else value


def _common(body: Any, kind: type, req_kind: str) -> tuple[Any, GenerationRequest]:
    typed = decode_body(body, kind)
    req = GenerationRequest(kind=req_kind, model=typed.model)
    req.stream = _flag(typed.stream)
    if typed.stream_options is not None:
        req.include_usage = _flag(typed.stream_options.include_usage)
    req.n = typed.n or 1
    max_tokens = getattr(typed, "max_completion_tokens", None)
    req.max_tokens = max_tokens if max_tokens is not None else typed.max_tokens
    req.min_tokens = typed.min_tokens or 0
    req.stop = [typed.stop] if isinstance(typed.stop, str) else list(typed.stop or ())
    req.stop_token_ids = list(typed.stop_token_ids or ())
    req.ignore_eos = _flag(typed.ignore_eos)
    req.include_stop_str_in_output = _flag(typed.include_stop_str_in_output)
    req.skip_special_tokens = _flag(typed.skip_special_tokens, True)
    req.sampling = {name: value for name in SAMPLING_FIELDS if (value := getattr(typed, name)) is not None}
    if typed.logit_bias:
        req.sampling["logit_bias"] = _logit_bias(typed.logit_bias)
    unsupported = None if body.keys().isdisjoint(_UNSUPPORTED) else next(  # the common case: none named at all
        (name for name in UNSUPPORTED_SAMPLING_FIELDS if body.get(name) is not None), None)
    if unsupported is not None:
        _fail(f"'{unsupported}' is not supported by this server (it would change what is generated, so it is "
              f"refused rather than ignored)", unsupported)
    if typed.nvext is not None:
        req.extra_fields = list(typed.nvext.extra_fields or ())
        req.backend_instance_id = typed.nvext.backend_instance_id
    if typed.seed is not None and typed.seed > MAX_SEED:  # msgspec bounds stop at int64; the schema says this
        _fail(f"'seed' must be at most {MAX_SEED}", "seed")
    return typed, req


def _logit_bias(bias: dict[str, float]) -> dict[int, float]:
    """OpenAI's logit_bias (token id strings -> bias) with int keys; the model's vocabulary is checked later."""
    ids: dict[int, float] = {}
    for key, value in bias.items():
        if not key.isdigit() or int(key) > MAX_TOKEN_ID:
            _fail(f"'logit_bias' keys must be token ids (0 to {MAX_TOKEN_ID}), got {key!r}", "logit_bias")
        ids[int(key)] = value
    return ids


def _validate_messages(typed: ChatCompletionRequest, messages: list[dict]) -> list[dict]:
    """Rules the types leave open: an assistant turn holds content or tool calls."""
    for i, message in enumerate(typed.messages):
        if message.content is None and not getattr(message, "tool_calls", None):
            _fail(f"'messages[{i}].content' is required (or 'tool_calls' on an assistant message)",
                  f"messages[{i}].content")
    return messages


def _validate_tools(typed: ChatCompletionRequest, body: dict) -> tuple[list[dict] | None, Any]:
    tools, choice = body.get("tools"), body.get("tool_choice")
    if typed.tool_choice is not None:
        if typed.tool_choice != "none" and not tools:
            _fail("'tool_choice' needs 'tools'", "tool_choice")
        if choice == "none":  # the model sees no tools and nothing is parsed as a call
            return None, choice
        if not isinstance(choice, str):  # only the named function is offered to the model
            name = typed.tool_choice.function.name
            tools = [t for t in tools if t["function"]["name"] == name]
            if not tools:
                _fail(f"'tool_choice' names {name!r}, which is not in 'tools'", "tool_choice")
    return tools or None, choice


def parse_chat_request(body: Any) -> GenerationRequest:
    """Validate an OpenAI chat.completions request body (a decoded JSON dict)."""
    typed, req = _common(body, ChatCompletionRequest, "chat")
    req.messages = _validate_messages(typed, body["messages"])
    req.tools, req.tool_choice = _validate_tools(typed, body)
    if typed.response_format is not None:
        req.response_format = body["response_format"]
    req.logprobs = _flag(typed.logprobs)
    if typed.top_logprobs is not None:
        if not req.logprobs and typed.top_logprobs > 0:
            _fail("'top_logprobs' needs 'logprobs': true", "top_logprobs")
        req.top_logprobs = typed.top_logprobs
    return req


def parse_completion_request(body: Any) -> GenerationRequest:
    """Validate an OpenAI completions request body; one prompt (text or token ids)."""
    typed, req = _common(body, CompletionRequest, "completion")
    prompt = typed.prompt
    if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], (str, list)):
        prompt = prompt[0]
    if isinstance(prompt, list) and not all(isinstance(t, int) for t in prompt):
        _fail("'prompt' must be a string or a list of token ids (one prompt per request)", "prompt")
    req.prompt = prompt
    if typed.logprobs is not None:
        req.logprobs, req.top_logprobs = True, typed.logprobs
    req.echo = _flag(typed.echo)
    if typed.suffix:
        _fail("'suffix' is not supported: no model served here does fill-in-the-middle", "suffix")
    if typed.max_tokens == 0:   # vLLM's scoring use: the worker makes one token, which is dropped
        if not req.echo:
            _fail("'max_tokens' 0 needs 'echo': true (it returns the prompt, with 'logprobs' its token logprobs)",
                  "max_tokens")
        req.max_tokens, req.echo_only = 1, True
    return req


def parse_embedding_request(body: Any) -> EmbeddingRequest:
    """Validate an OpenAI embeddings request body; `input` always a list of strings."""
    typed = decode_body(body, EmbeddingRequest)
    if isinstance(typed.input, str):
        typed.input = [typed.input]
    return typed


def with_usage(body: Any) -> Any:
    """`body` asking for the closing usage chunk (token counts for metrics and whole answers); a
    malformed `stream_options` is left as sent, so validation names it."""
    options = body.get("stream_options") if isinstance(body, dict) else None
    if options is None or (isinstance(options, dict) and options.get("include_usage") in (None, True, False)):
        return dict(body, stream_options={**(options or {}), "include_usage": True})
    return body


def to_wire_request(req: GenerationRequest, token_ids: list[int], max_tokens: int, seed_offset: int = 0) -> dict:
    """The worker wire-format request (docs/INTERFACES.md) for one choice of `req`."""
    sampling = req.sampling
    if seed_offset and "seed" in sampling:
        sampling = dict(sampling, seed=sampling["seed"] + seed_offset)
    return {
        "token_ids": token_ids,
        "sampling_options": sampling,
        "stop_conditions": {"max_tokens": max_tokens, "min_tokens": req.min_tokens,
                            "stop_token_ids": req.stop_token_ids, "ignore_eos": req.ignore_eos},
        "output_options": _output_options(req),
        **_guided_decoding(req),
    }


def _output_options(req: GenerationRequest) -> dict:
    """Logprobs of the generated tokens, and of the prompt's for completions echo (only sent when asked)."""
    options: dict = {"logprobs": req.top_logprobs if req.logprobs else None}
    if req.kind == "completion" and req.echo and req.logprobs:
        options["prompt_logprobs"] = req.top_logprobs
    return options


def _guided_decoding(req: GenerationRequest) -> dict:
    """`{"guided_decoding": {...}}` when the response format or tool_choice is enforced by constrained decoding."""
    guided = guided_decoding(req.response_format, req.tools, req.tool_choice)
    return {"guided_decoding": guided} if guided else {}
