"""Responses input items, tools, tool_choice and text.format as the chat path's request (messages, tools,
tool_choice, response_format, max_tokens): /v1/responses runs on the chat completion stream."""
from __future__ import annotations

import json

import msgspec

from pyimpl.llm.errors import InvalidRequestError
from pyimpl.llm.responses.types import FunctionToolChoice, McpTool, McpToolChoice, ResponsesRequest


def snapshot(item: dict) -> dict:
    """A deep copy of an output item as it is now: an event carries the item at that point of the stream, while the
    item itself keeps growing (its text parts take the next deltas)."""
    return msgspec.json.decode(msgspec.json.encode(item))

SAMPLING = ("temperature", "top_p")


def input_items(req: ResponsesRequest) -> list[dict]:
    """The request's `input` as a list of items (a string is one user message)."""
    if isinstance(req.input, str):
        return [{"type": "message", "role": "user", "content": req.input}]
    return [msgspec.to_builtins(item) for item in req.input]


def _text(content: str | list[dict]) -> str:
    """Message content (a string or text parts) as text."""
    return content if isinstance(content, str) else "".join(part["text"] for part in content)


def _call(messages: list[dict], call_id: str, name: str, arguments: str) -> None:
    """A tool call of the assistant: consecutive calls are one assistant message with tool_calls."""
    call = {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}
    last = messages[-1] if messages else None
    if last is not None and last["role"] == "assistant" and last.get("tool_calls"):
        last["tool_calls"].append(call)
    else:
        messages.append({"role": "assistant", "content": None, "tool_calls": [call]})


def mcp_result_text(item: dict) -> str:
    """What the model reads of an mcp_call: its output, or its error."""
    error = item.get("error")
    if error is None:
        return item.get("output") or ""
    message = error.get("message") if isinstance(error, dict) else error
    return f"Error: {message or json.dumps(error)}"


def chat_messages(items: list[dict]) -> list[dict]:
    """Conversation items (validated input items and stored output items) as chat messages: consecutive
    function_call items are one assistant message with tool_calls, function_call_output items are tool
    messages, reasoning items are not replayed. An mcp_call is a call and its result; an mcp_approval_request
    a call whose result is the mcp_call run once approved (or a refusal); unanswered requests are left out."""
    messages: list[dict] = []
    answered = {item["approval_request_id"] for item in items if item["type"] == "mcp_approval_response"}
    for item in items:
        kind = item["type"]
        if kind == "message":
            messages.append({"role": item["role"], "content": _text(item["content"])})
        elif kind == "function_call":
            _call(messages, item["call_id"], item["name"], item["arguments"])
        elif kind == "function_call_output":
            messages.append({"role": "tool", "tool_call_id": item["call_id"], "content": _text(item["output"])})
        elif kind == "mcp_approval_request" and item.get("id") in answered:   # a client's item may lack its id
            _call(messages, item["id"], item["name"], item["arguments"])
        elif kind == "mcp_approval_response" and not item["approve"]:
            reason = f" ({item['reason']})" if item.get("reason") else ""
            messages.append({"role": "tool", "tool_call_id": item["approval_request_id"],
                             "content": f"The user did not approve this tool call{reason}."})
        elif kind == "mcp_call":
            call_id = item.get("approval_request_id") or item.get("id") or f"mcp_{len(messages)}"
            if not item.get("approval_request_id"):
                _call(messages, call_id, item["name"], item["arguments"])
            messages.append({"role": "tool", "tool_call_id": call_id, "content": mcp_result_text(item)})
    return messages


def chat_tools(req: ResponsesRequest) -> list[dict] | None:
    """Responses function tools as chat tools (`mcp` tools are the agent's: see mcp_tools.py)."""
    return [{"type": "function", "function": {k: v for k, v in msgspec.to_builtins(tool).items() if k != "type"}}
            for tool in req.tools or () if not isinstance(tool, McpTool)] or None


def chat_tool_choice(choice: str | FunctionToolChoice | McpToolChoice | None) -> str | dict | None:
    """`tool_choice`: "auto" | "none" | "required" as is; a named function or MCP tool as chat's named choice
    (an MCP server without a tool name: "required")."""
    if isinstance(choice, (FunctionToolChoice, McpToolChoice)):
        return {"type": "function", "function": {"name": choice.name}} if choice.name else "required"
    return choice


def chat_response_format(req: ResponsesRequest) -> dict | None:
    """`text.format` as chat's response_format (json_schema: name, schema, strict, description)."""
    fmt = msgspec.to_builtins(req.text.format) if req.text is not None and req.text.format is not None else None
    if fmt is None or fmt["type"] != "json_schema":
        return fmt
    return {"type": "json_schema", "json_schema": {k: v for k, v in fmt.items() if k != "type"}}


def instructed(req: ResponsesRequest, items: list[dict]) -> list[dict]:
    """The conversation `items` as chat messages after the request's instructions (not carried over)."""
    messages = chat_messages(items)
    if req.instructions:
        messages.insert(0, {"role": "system", "content": req.instructions})
    return messages


def chat_request(req: ResponsesRequest, history: list[dict],
                 mcp_tools: list[dict] | None = None) -> tuple[dict, list[dict]]:
    """The chat completion request for `req` after the conversation `history` (items), and this request's own
    input items (what the conversation store keeps after `history`). `mcp_tools`: the chat tools of the MCP
    servers (the agent's)."""
    if req.background:
        raise InvalidRequestError("background responses are not supported", "background")
    items = input_items(req)
    messages = instructed(req, [*history, *items])
    if not messages:
        raise InvalidRequestError("input must hold at least one message", "input")
    body: dict = {"model": req.model, "messages": messages}
    tools = [*(chat_tools(req) or ()), *(mcp_tools or ())]
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

