"""Streaming tool-call and reasoning parsers, looked up by the names used in model cards and CLI flags."""
from __future__ import annotations

from .base import ToolCallParser
from .deltas import ReasoningDelta, ToolCall, ToolParseDelta, new_tool_call_id
from .hermes import HermesToolCallParser
from .llama3_json import Llama3JsonToolCallParser
from .mistral import MistralToolCallParser
from .pythonic import PythonicToolCallParser
from .reasoning import DeepSeekR1ReasoningParser, ThinkReasoningParser

TOOL_CALL_PARSERS: dict[str, type[ToolCallParser]] = {
    p.name: p for p in (HermesToolCallParser, Llama3JsonToolCallParser, MistralToolCallParser,
                        PythonicToolCallParser)
}
REASONING_PARSERS: dict[str, type[ThinkReasoningParser]] = {
    p.name: p for p in (DeepSeekR1ReasoningParser, ThinkReasoningParser)
}


def get_tool_call_parser(name: str) -> type[ToolCallParser]:
    """The tool-call parser class registered as `name`; ValueError naming the known ones otherwise."""
    try:
        return TOOL_CALL_PARSERS[name]
    except KeyError:
        raise ValueError(f"unknown tool call parser {name!r}; known: {', '.join(TOOL_CALL_PARSERS)}") from None


def get_reasoning_parser(name: str) -> type[ThinkReasoningParser]:
    """The reasoning parser class registered as `name`; ValueError naming the known ones otherwise."""
    try:
        return REASONING_PARSERS[name]
    except KeyError:
        raise ValueError(f"unknown reasoning parser {name!r}; known: {', '.join(REASONING_PARSERS)}") from None


__all__ = ["ToolCall", "ToolParseDelta", "ReasoningDelta", "ToolCallParser", "TOOL_CALL_PARSERS",
           "REASONING_PARSERS", "get_tool_call_parser", "get_reasoning_parser", "new_tool_call_id"]
