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


# What a chat template writes when it offers tools, and the parser that reads the model's calls back: the first
# marker found picks the parser (a model folder that names none gets its tool calls as plain text).
TEMPLATE_TOOL_MARKERS: tuple[tuple[str, str], ...] = (
    ("<tool_call>", "hermes"),                       # Qwen 2.5/3, Hermes, SmolLM3
    ("[TOOL_CALLS]", "mistral"),                     # Mistral
    ("func_name1(", "pythonic"),                     # Llama 3.2 / 4 pythonic calls
    ("<|python_tag|>", "llama3_json"),               # Llama 3.1 / 3.2 JSON calls
    ("respond with a JSON for a function call", "llama3_json"),
)


def tool_call_parser_for_template(chat_template: str | None) -> str | None:
    """The tool-call parser a chat template's tool markers call for, or None when it shows none."""
    for marker, name in TEMPLATE_TOOL_MARKERS:
        if chat_template and marker in chat_template:
            return name
    return None


def check_parser_names(tool_call_parser: str | None, reasoning_parser: str | None) -> None:
    """ValueError naming the known parsers when either name is unknown (None: no parser)."""
    if tool_call_parser is not None:
        get_tool_call_parser(tool_call_parser)
    if reasoning_parser is not None:
        get_reasoning_parser(reasoning_parser)


__all__ = ["ToolCall", "ToolParseDelta", "ReasoningDelta", "ToolCallParser", "TOOL_CALL_PARSERS",
           "REASONING_PARSERS", "get_tool_call_parser", "get_reasoning_parser", "new_tool_call_id",
           "tool_call_parser_for_template", "check_parser_names"]
