"""OpenAI request validation and conversion into the worker wire format.

Requests stay plain dicts (no pydantic on the hot path); `parse_chat_request` and
`parse_completion_request` check every field we use and raise InvalidRequestError
naming the offending one.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pyimpl.llm.errors import InvalidRequestError

CHAT_ROLES = ("system", "developer", "user", "assistant", "tool")
MAX_N = 16
MAX_STOP_STRINGS = 16
MAX_TOP_LOGPROBS = 20


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
    sampling: dict = field(default_factory=dict)  # temperature, top_p, top_k, min_p, seed, penalties


def _fail(message: str, param: str):
    raise InvalidRequestError(message, param)


def _number(body: dict, name: str, lo: float, hi: float, integer: bool = False) -> Any:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (integer and not isinstance(value, int)):
        _fail(f"'{name}' must be {'an integer' if integer else 'a number'}", name)
    if not lo <= value <= hi:
        _fail(f"'{name}' must be between {lo} and {hi}, got {value}", name)
    return value


def _bool(body: dict, name: str, default: bool = False) -> bool:
    value = body.get(name, default)
    if value is None:
        return default
    if not isinstance(value, bool):
        _fail(f"'{name}' must be a boolean", name)
    return value


def _stop(body: dict) -> list[str]:
    stop = body.get("stop")
    if stop is None:
        return []
    if isinstance(stop, str):
        stop = [stop]
    if not isinstance(stop, list) or not all(isinstance(s, str) and s for s in stop):
        _fail("'stop' must be a non-empty string or a list of non-empty strings", "stop")
    if len(stop) > MAX_STOP_STRINGS:
        _fail(f"'stop' takes at most {MAX_STOP_STRINGS} strings", "stop")
    return stop


def _common(body: Any, kind: str) -> GenerationRequest:
    if not isinstance(body, dict):
        _fail("request body must be a JSON object", "body")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        _fail("'model' is required and must be a string", "model")
    req = GenerationRequest(kind=kind, model=model)
    req.stream = _bool(body, "stream")
    options = body.get("stream_options")
    if options is not None:
        if not isinstance(options, dict):
            _fail("'stream_options' must be an object", "stream_options")
        req.include_usage = bool(options.get("include_usage", False))
    req.n = _number(body, "n", 1, MAX_N, integer=True) or 1
    max_tokens = body.get("max_completion_tokens", body.get("max_tokens"))
    if max_tokens is not None:
        name = "max_completion_tokens" if "max_completion_tokens" in body else "max_tokens"
        req.max_tokens = _number({name: max_tokens}, name, 1, 1 << 31, integer=True)
    req.min_tokens = _number(body, "min_tokens", 0, 1 << 31, integer=True) or 0
    req.stop = _stop(body)
    ids = body.get("stop_token_ids")
    if ids is not None:
        if not isinstance(ids, list) or not all(isinstance(i, int) and i >= 0 for i in ids):
            _fail("'stop_token_ids' must be a list of token ids", "stop_token_ids")
        req.stop_token_ids = ids
    req.ignore_eos = _bool(body, "ignore_eos")
    req.include_stop_str_in_output = _bool(body, "include_stop_str_in_output")
    req.skip_special_tokens = _bool(body, "skip_special_tokens", True)
    sampling = {}
    for name, lo, hi, integer in (("temperature", 0.0, 2.0, False), ("top_p", 0.0, 1.0, False),
                                  ("min_p", 0.0, 1.0, False), ("presence_penalty", -2.0, 2.0, False),
                                  ("frequency_penalty", -2.0, 2.0, False),
                                  ("repetition_penalty", 1e-6, 10.0, False),
                                  ("top_k", -1, 1 << 31, True), ("seed", -(1 << 63), (1 << 64) - 1, True)):
        value = _number(body, name, lo, hi, integer)
        if value is not None:
            sampling[name] = value
    if sampling.get("top_p") == 0.0:
        _fail("'top_p' must be greater than 0", "top_p")
    req.sampling = sampling
    return req


def _validate_messages(messages: Any) -> list[dict]:
    if not isinstance(messages, list) or not messages:
        _fail("'messages' must be a non-empty list", "messages")
    for i, message in enumerate(messages):
        where = f"messages[{i}]"
        if not isinstance(message, dict):
            _fail(f"'{where}' must be an object", where)
        role = message.get("role")
        if role not in CHAT_ROLES:
            _fail(f"'{where}.role' must be one of {', '.join(CHAT_ROLES)}", f"{where}.role")
        content = message.get("content")
        if content is None:
            if role == "assistant" and message.get("tool_calls"):
                continue
            _fail(f"'{where}.content' is required", f"{where}.content")
        if isinstance(content, list):
            if not all(isinstance(p, dict) and p.get("type") == "text" and isinstance(p.get("text"), str)
                       for p in content):
                _fail(f"'{where}.content' parts must be text parts", f"{where}.content")
        elif not isinstance(content, str):
            _fail(f"'{where}.content' must be a string or a list of text parts", f"{where}.content")
    return messages


def _validate_tools(body: dict) -> tuple[list[dict] | None, Any]:
    tools = body.get("tools")
    if tools is not None:
        if not isinstance(tools, list):
            _fail("'tools' must be a list", "tools")
        for i, tool in enumerate(tools):
            function = tool.get("function") if isinstance(tool, dict) else None
            if not isinstance(tool, dict) or tool.get("type") != "function" or not isinstance(function, dict) \
                    or not isinstance(function.get("name"), str):
                _fail(f"'tools[{i}]' must be {{'type': 'function', 'function': {{'name': ...}}}}", f"tools[{i}]")
    choice = body.get("tool_choice")
    if choice is not None:
        named = isinstance(choice, dict) and isinstance(choice.get("function"), dict) \
            and isinstance(choice["function"].get("name"), str)
        if choice not in ("none", "auto", "required") and not named:
            _fail("'tool_choice' must be 'none', 'auto', 'required' or a named function", "tool_choice")
        if choice != "none" and not tools:
            _fail("'tool_choice' needs 'tools'", "tool_choice")
        if choice == "none":  # the model sees no tools and nothing is parsed as a call
            return None, choice
        if named:  # only the named function is offered to the model
            tools = [t for t in tools if t["function"]["name"] == choice["function"]["name"]]
            if not tools:
                _fail(f"'tool_choice' names {choice['function']['name']!r}, which is not in 'tools'", "tool_choice")
    return tools or None, choice


def parse_chat_request(body: Any) -> GenerationRequest:
    """Validate an OpenAI chat.completions request body (a decoded JSON dict)."""
    req = _common(body, "chat")
    req.messages = _validate_messages(body.get("messages"))
    req.tools, req.tool_choice = _validate_tools(body)
    if req.tool_choice == "none":
        req.tools = None
    fmt = body.get("response_format")
    if fmt is not None:
        if not isinstance(fmt, dict) or fmt.get("type") not in ("text", "json_object", "json_schema"):
            _fail("'response_format.type' must be 'text', 'json_object' or 'json_schema'", "response_format")
        req.response_format = fmt
    req.logprobs = _bool(body, "logprobs")
    top = _number(body, "top_logprobs", 0, MAX_TOP_LOGPROBS, integer=True)
    if top is not None:
        if not req.logprobs and top > 0:
            _fail("'top_logprobs' needs 'logprobs': true", "top_logprobs")
        req.top_logprobs = top
    return req


def parse_completion_request(body: Any) -> GenerationRequest:
    """Validate an OpenAI completions request body; one prompt (text or token ids)."""
    req = _common(body, "completion")
    prompt = body.get("prompt")
    if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], (str, list)):
        prompt = prompt[0]
    if isinstance(prompt, str):
        if not prompt:
            _fail("'prompt' must not be empty", "prompt")
    elif isinstance(prompt, list) and prompt and all(isinstance(t, int) and not isinstance(t, bool) and t >= 0
                                                      for t in prompt):
        pass
    else:
        _fail("'prompt' must be a string or a list of token ids (one prompt per request)", "prompt")
    req.prompt = prompt
    logprobs = _number(body, "logprobs", 0, 5, integer=True)
    if logprobs is not None:
        req.logprobs, req.top_logprobs = True, logprobs
    req.echo = _bool(body, "echo")
    return req


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
        "output_options": {"logprobs": req.top_logprobs if req.logprobs else None},
        **_guided_decoding(req.response_format),
    }


def _guided_decoding(response_format: dict | None) -> dict:
    """`{"guided_decoding": {...}}` when the response format is enforced by constrained decoding, else {}."""
    if response_format and response_format.get("type") == "json_object":
        return {"guided_decoding": {"json_object": True}}
    return {}
