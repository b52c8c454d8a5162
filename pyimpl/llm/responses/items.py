"""Responses input items, tools, tool_choice and text.format as the chat path's request (messages, tools,
tool_choice, response_format, max_tokens): /v1/responses runs on the chat completion stream."""
from __future__ import annotations

from typing import Any

from pyimpl.llm.errors import InvalidRequestError
from pyimpl.llm.responses.types import ResponsesRequest

SAMPLING = ("temperature", "top_p")


def input_items(req: ResponsesRequest) -> list[dict]:
    """The request's `input` as a list of items (a string is one user message)."""
    if isinstance(req.input, str):
        return [{"type": "message", "role": "user", "content": req.input}]
    return [dict(item, type=item.get("type", "message")) for item in req.input]


def _text(content: Any, where: str) -> str:
    """Message content (a string or text parts) as text; non-text parts are a 400."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise InvalidRequestError(f"{where}.content must be a string or a list of content parts", "input")
    texts = []
    for part in content:
        kind = part.get("type") if isinstance(part, dict) else None
        if kind not in ("input_text", "output_text", "text") or not isinstance(part.get("text"), str):
            raise InvalidRequestError(f"{where}: content part of type {kind!r} is not supported (text only)", "input")
        texts.append(part["text"])
    return "".join(texts)


def _require_str(item: dict, key: str, where: str) -> str:
    value = item.get(key)
    if not isinstance(value, str):
        raise InvalidRequestError(f"{where}.{key} must be a string", "input")
    return value


def chat_messages(items: list[dict]) -> list[dict]:
    """Conversation items as chat messages: consecutive function_call items are one assistant message with
    tool_calls; function_call_output items are tool messages; reasoning items are not replayed."""
    messages: list[dict] = []
    for i, item in enumerate(items):
        where, kind = f"input[{i}]", item.get("type")
        if kind == "message":
            role = item.get("role")
            if role not in ("user", "assistant", "system", "developer"):
                raise InvalidRequestError(f"{where}.role must be user, assistant, system or developer", "input")
            messages.append({"role": role, "content": _text(item.get("content"), where)})
        elif kind == "function_call":
            call = {"id": _require_str(item, "call_id", where), "type": "function",
                    "function": {"name": _require_str(item, "name", where),
                                 "arguments": _require_str(item, "arguments", where)}}
            last = messages[-1] if messages else None
            if last is not None and last["role"] == "assistant" and last.get("tool_calls"):
                last["tool_calls"].append(call)
            else:
                messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
        elif kind == "function_call_output":
            output = item.get("output")
            messages.append({"role": "tool", "tool_call_id": _require_str(item, "call_id", where),
                             "content": output if isinstance(output, str) else _text(output, where)})
        elif kind == "reasoning":
            continue
        else:
            raise InvalidRequestError(f"{where}: input items of type {kind!r} are not supported", "input")
    return messages


def chat_tools(tools: list[dict] | None) -> list[dict] | None:
    """Responses function tools as chat tools; `mcp` and hosted tools are a clear 400."""
    if not tools:
        return None
    out = []
    for i, tool in enumerate(tools):
        kind = tool.get("type")
        if kind == "mcp":
            raise InvalidRequestError("tools of type 'mcp' are not supported yet", "tools")
        if kind != "function":
            raise InvalidRequestError(f"tools[{i}]: tools of type {kind!r} are not supported", "tools")
        name = tool.get("name")
        if not isinstance(name, str) or not name:
            raise InvalidRequestError(f"tools[{i}].name must be a non-empty string", "tools")
        function = {"name": name}
        for key in ("description", "parameters", "strict"):
            if tool.get(key) is not None:
                function[key] = tool[key]
        out.append({"type": "function", "function": function})
    return out


def chat_tool_choice(choice: str | dict | None) -> str | dict | None:
    """`tool_choice`: "auto" | "none" | "required" as is; {"type": "function", "name"} as chat's named choice."""
    if choice is None or isinstance(choice, str):
        return choice
    if choice.get("type") == "function" and isinstance(choice.get("name"), str):
        return {"type": "function", "function": {"name": choice["name"]}}
    raise InvalidRequestError("tool_choice must be auto, none, required or {\"type\": \"function\", \"name\"}",
                              "tool_choice")


def chat_response_format(req: ResponsesRequest) -> dict | None:
    """`text.format` as chat's response_format (json_schema: name, schema, strict, description)."""
    fmt = req.text.format if req.text is not None else None
    if fmt is None:
        return None
    kind = fmt.get("type")
    if kind in ("text", "json_object"):
        return {"type": kind}
    if kind == "json_schema":
        if not isinstance(fmt.get("schema"), dict):
            raise InvalidRequestError("text.format.schema must be a JSON Schema object", "text")
        spec = {k: fmt[k] for k in ("name", "schema", "strict", "description") if fmt.get(k) is not None}
        return {"type": "json_schema", "json_schema": spec}
    raise InvalidRequestError("text.format.type must be text, json_object or json_schema", "text")


def chat_request(req: ResponsesRequest, history: list[dict]) -> tuple[dict, list[dict]]:
    """The chat completion request for `req` after the conversation `history` (items), and this request's own
    input items (what the conversation store keeps after `history`). Instructions are not carried over."""
    if req.background:
        raise InvalidRequestError("background responses are not supported", "background")
    items = input_items(req)
    messages = chat_messages([*history, *items])
    if req.instructions:
        messages.insert(0, {"role": "system", "content": req.instructions})
    if not messages:
        raise InvalidRequestError("input must hold at least one message", "input")
    body: dict = {"model": req.model, "messages": messages}
    tools = chat_tools(req.tools)
    if tools:
        body["tools"] = tools
        if req.tool_choice is not None:
            body["tool_choice"] = chat_tool_choice(req.tool_choice)
    elif req.tool_choice not in (None, "none", "auto"):
        raise InvalidRequestError("tool_choice needs tools", "tool_choice")
    response_format = chat_response_format(req)
    if response_format is not None:
        body["response_format"] = response_format
    if req.max_output_tokens is not None:
        body["max_tokens"] = req.max_output_tokens
    for key in SAMPLING:
        if getattr(req, key) is not None:
            body[key] = getattr(req, key)
    return body, items


def max_function_calls(req: ResponsesRequest) -> int | None:
    """How many function calls one response may hold: max_tool_calls, and 1 when parallel_tool_calls is false."""
    limits = [n for n in (req.max_tool_calls, 1 if req.parallel_tool_calls is False else None) if n is not None]
    return min(limits) if limits else None

