"""Plain data produced by the streaming tool-call and reasoning parsers."""
from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
from typing import Any


@dataclass
class ToolCall:
    """One complete tool call; `arguments` is a JSON object serialised as a string, as OpenAI sends it."""
    id: str
    name: str
    arguments: str


@dataclass
class ToolCallDelta:
    """A piece of a streamed tool call as OpenAI sends it: the first piece of call `index` carries its id and
    name, the next ones more of its arguments text (the pieces' `arguments` concatenate to the call's)."""
    index: int
    id: str | None = None
    name: str | None = None
    arguments: str = ""


@dataclass
class ToolParseDelta:
    """What one `feed` or `finish` of a tool-call parser yields: plain content, the streamed pieces of tool
    calls (`tool_call_deltas`), and the tool calls finished by this step, whole (`tool_calls`)."""
    content: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    tool_call_deltas: list[ToolCallDelta] = field(default_factory=list)


@dataclass
class ReasoningDelta:
    """What one `feed` or `finish` of a reasoning parser yields: answer text and reasoning text."""
    content: str = ""
    reasoning_content: str = ""


def new_tool_call_id() -> str:
    """A fresh OpenAI-style tool call id, `call_<24 random hex digits>`."""
    return f"call_{secrets.token_hex(12)}"


def make_tool_call(name: Any, arguments: Any) -> ToolCall | None:
    """Build a ToolCall from a decoded name and arguments, or None when they do not form one."""
    if not isinstance(name, str) or not name:
        return None
    if arguments is None:
        arguments = {}
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments) if arguments.strip() else {}
        except ValueError:
            return None
    if not isinstance(arguments, dict):
        return None
    return ToolCall(new_tool_call_id(), name, json.dumps(arguments, ensure_ascii=False))


def tool_call_from_json(obj: Any) -> ToolCall | None:
    """A ToolCall from `{"name": ..., "arguments"|"parameters": {...}}` (or OpenAI's `{"function": {...}}`)."""
    if not isinstance(obj, dict):
        return None
    if isinstance(obj.get("function"), dict):
        obj = obj["function"]
    arguments = obj["arguments"] if "arguments" in obj else obj.get("parameters")
    return make_tool_call(obj.get("name"), arguments)
