"""A `guided_decoding` wire dict as an llguidance grammar: a JSON schema, or tool calls in the model's own format.

Wire shapes (docs/INTERFACES.md): {"json_object": true} | {"json_schema": {...}} |
{"tool_call": {"tools": [{"name", "parameters"}], "name": str | None, "auto": bool}} (name None: one or more calls of
any of the tools; auto: free text or such calls).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Mapping

from llguidance import LLMatcher

from pyimpl.llm.text.parsers import REASONING_PARSERS
from pyimpl.llm.text.parsers.reasoning import THINK_END, THINK_START

# compact separators, no free whitespace: a sampled model cannot wander into endless blanks
JSON_OPTIONS: dict[str, Any] = {"whitespace_flexible": False, "item_separator": ", ", "key_separator": ": "}


@dataclass(frozen=True)
class ToolCallFormat:
    """How a tool-call parser (pyimpl.llm.text.parsers) expects calls: each call's JSON object is wrapped in
    call_open/call_close, calls are joined by `separator`, the whole list sits in list_open/list_close."""

    arguments_key: str = "arguments"
    call_open: str = ""
    call_close: str = ""
    separator: str = "\n"
    list_open: str = ""
    list_close: str = ""


TOOL_CALL_FORMATS: dict[str, ToolCallFormat] = {
    "hermes": ToolCallFormat(call_open="<tool_call>\n", call_close="\n</tool_call>", separator="\n"),
    "llama3_json": ToolCallFormat(arguments_key="parameters", separator="; "),
    "mistral": ToolCallFormat(separator=", ", list_open="[TOOL_CALLS][", list_close="]"),
}


class GrammarUnsupported(ValueError):
    """The request asks for a constraint this model's tool-call format has no grammar for."""


def grammar_for(guided: Mapping[str, Any], tool_call_parser: str | None, added_tokens: Mapping[str, int],
                reasoning_parser: str | None = None) -> str | None:
    """The llguidance grammar for `guided` (None when it asks for nothing); `added_tokens` (text -> id) lets tags
    that are single tokens in this vocabulary (`<tool_call>`, `[TOOL_CALLS]`) be matched as those tokens. With a
    `reasoning_parser` whose tags are single tokens, a reasoning block may come first, unconstrained."""
    if guided.get("tool_call"):
        body = _tool_call_rules(guided["tool_call"], tool_call_parser, added_tokens)
        if body is None:
            return None
    elif isinstance(guided.get("json_schema"), dict):
        body = _json_rule(guided["json_schema"])
    elif guided.get("json_object"):
        body = _json_rule({"type": "object"})
    else:
        return None
    return LLMatcher.grammar_from_lark(f"{_start(reasoning_parser, added_tokens)}\n{body}")


def _start(reasoning_parser: str | None, added: Mapping[str, int]) -> str:
    """The start rule: the constrained body, after a reasoning block where the model may write one."""
    parser = REASONING_PARSERS.get(reasoning_parser or "")
    if parser is None or THINK_START not in added or THINK_END not in added:
        return "start: body"     # a plain-text closing tag could not end the free text: no reasoning block
    opening, closing = f"<[{added[THINK_START]}]>", f"<[{added[THINK_END]}]>"
    if parser.starts_in_reasoning:   # the template opened the block: it must be closed before the body
        return f'start: {opening}? THINK {closing} "\\n"* body\nTHINK: /(.|\\n)*/'
    return f'start: think? body\nthink: {opening} THINK {closing} "\\n"*\nTHINK: /(.|\\n)*/'


def _json_rule(schema: Mapping[str, Any]) -> str:
    options = {**JSON_OPTIONS, **(schema.get("x-guidance") or {})}
    return f"body: %json {json.dumps({**schema, 'x-guidance': options})}\n"


def _tool_call_rules(spec: Mapping[str, Any], parser: str | None, added: Mapping[str, int]) -> str | None:
    """Calls of the tools in the parser's format; `auto` (strict tools, tool_choice auto): free text or calls,
    None (nothing enforced, as OpenAI's non-strict) where the calls' opening tag is not one token ending the text."""
    fmt = TOOL_CALL_FORMATS.get(parser or "")
    if fmt is None and spec.get("auto"):
        return None
    if fmt is None:
        raise GrammarUnsupported(f"tool calls in the {parser or 'unknown'!s} format cannot be enforced "
                                 f"(enforced formats: {', '.join(TOOL_CALL_FORMATS)})")
    tools = [t for t in spec.get("tools") or () if spec.get("name") in (None, t["name"])]
    if not tools:
        raise GrammarUnsupported(f"tool_choice names {spec.get('name')!r}, which is not among the tools")
    calls = [_call_schema(t["name"], t.get("parameters"), fmt.arguments_key) for t in tools]
    schema = {**(calls[0] if len(calls) == 1 else {"anyOf": calls}), "x-guidance": JSON_OPTIONS}
    call = " ".join(filter(None, [_literal(fmt.call_open, added), "call_json", _literal(fmt.call_close, added)]))
    repeat = "" if spec.get("name") else f" ({_literal(fmt.separator, added)} call)*"
    calls_rule = " ".join(filter(None, [_literal(fmt.list_open, added), "call" + repeat,
                                        _literal(fmt.list_close, added)]))
    rules = f"calls: {calls_rule}\ncall: {call}\ncall_json: %json {json.dumps(schema)}\n"
    if not spec.get("auto"):
        return "body: calls\n" + rules
    if not _literal(fmt.list_open or fmt.call_open, added).startswith("<["):   # free text could run into a
        return None                                                               # plain-text tag unseen
    return "body: FREE | FREE? calls\nFREE: /(.|\\n)+/\n" + rules


def _call_schema(name: str, parameters: Any, arguments_key: str) -> dict:
    arguments = parameters if isinstance(parameters, dict) and parameters else {"type": "object"}
    return {"type": "object", "properties": {"name": {"const": name}, arguments_key: arguments},
            "required": ["name", arguments_key], "additionalProperties": False}


def _literal(text: str, added: Mapping[str, int]) -> str:
    """`text` as a Lark sequence: quoted strings, with added tokens' texts as `<[id]>` token references."""
    parts, plain, i = [], "", 0
    tags = sorted((t for t in added if len(t) > 1), key=len, reverse=True)
    while i < len(text):
        tag = next((t for t in tags if text.startswith(t, i)), None)
        if tag is None:
            plain, i = plain + text[i], i + 1
            continue
        if plain:
            parts.append(json.dumps(plain))
        parts.append(f"<[{added[tag]}]>")
        plain, i = "", i + len(tag)
    if plain:
        parts.append(json.dumps(plain))
    return " ".join(parts)
