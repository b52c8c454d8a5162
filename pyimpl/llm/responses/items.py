"""Responses input items, tools, tool_choice and text.format as the chat path's request (messages, tools,
tool_choice, response_format, max_tokens): /v1/responses runs on the chat completion stream."""
from __future__ import annotations

import msgspec

from pyimpl.llm.errors import InvalidRequestError
from pyimpl.llm.responses.types import FunctionToolChoice, McpTool, ResponsesRequest

SAMPLING = ("temperature", "top_p")


def input_items(req: ResponsesRequest) -> list[dict]:
    """The request's `input` as a list of items (a string is one user message)."""
    if isinstance(req.input, str):
        return [{"type": "message", "role": "user", "content": req.input}]
    return [msgspec.to_builtins(item) for item in req.input]


def _text(content: str | list[dict]) -> str:
    """Message content (a string or text parts) as text."""
    return content if isinstance(content, str) else "".join(part["text"] for part in content)


def chat_messages(items: list[dict]) -> list[dict]:
    """Conversation items (validated input items and stored output items) as chat messages: consecutive
    function_call items are one assistant message with tool_calls, function_call_output items are tool
    messages, reasoning items are not replayed."""
    messages: list[dict] = []
    for item in items:
        kind = item["type"]
        if kind == "message":
            messages.append({"role": item["role"], "content": _text(item["content"])})
        elif kind == "function_call":
            call = {"id": item["call_id"], "type": "function",
                    "function": {"name": item["name"], "arguments": item["arguments"]}}
            last = messages[-1] if messages else None
            if last is not None and last["role"] == "assistant" and last.get("tool_calls"):
                last["tool_calls"].append(call)
            else:
                messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
        elif kind == "function_call_output":
            messages.append({"role": "tool", "tool_call_id": item["call_id"], "content": _text(item["output"])})
    return messages


def chat_tools(req: ResponsesRequest) -> list[dict] | None:
    """Responses function tools as chat tools; an `mcp` tool is a clear 400 until MCP is served."""
    if any(isinstance(tool, McpTool) for tool in req.tools or ()):
        raise InvalidRequestError("tools of type 'mcp' are not supported yet", "tools")
    return [{"type": "function", "function": {k: v for k, v in msgspec.to_builtins(tool).items() if k != "type"}}
            for tool in req.tools or ()] or None


def chat_tool_choice(choice: str | FunctionToolChoice | None) -> str | dict | None:
    """`tool_choice`: "auto" | "none" | "required" as is; {"type": "function", "name"} as chat's named choice."""
    if isinstance(choice, FunctionToolChoice):
        return {"type": "function", "function": {"name": choice.name}}
    return choice


def chat_response_format(req: ResponsesRequest) -> dict | None:
    """`text.format` as chat's response_format (json_schema: name, schema, strict, description)."""
    fmt = msgspec.to_builtins(req.text.format) if req.text is not None and req.text.format is not None else None
    if fmt is None or fmt["type"] != "json_schema":
        return fmt
    return {"type": "json_schema", "json_schema": {k: v for k, v in fmt.items() if k != "type"}}


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
    tools = chat_tools(req)
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

