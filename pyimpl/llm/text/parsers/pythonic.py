"""Pythonic tool calls (Llama 3.2/4): `[get_weather(city="Paris"), f(a=1)]`, read with `ast`."""
from __future__ import annotations

import ast
import json

from .base import ToolCallParser
from .text_scan import partial_tag_length
from .deltas import ToolCall, make_tool_call

PYTHON_START, PYTHON_END = "<|python_start|>", "<|python_end|>"
START, CONTENT, LIST, AFTER_LIST = "start", "content", "list", "after_list"


class PythonicToolCallParser(ToolCallParser):
    """Output that starts with `[` is tried as a Python list of calls with literal keyword arguments."""

    name = "pythonic"

    def __init__(self) -> None:
        super().__init__()
        self._mode = START
        self._raw = ""        # consumed but undecided text (leading whitespace, <|python_start|>)
        self._tried = 0       # `]` positions in the buffer below this were already tried

    def _scan(self, final: bool) -> None:
        while self._step():
            pass
        if final:
            self._emit_content(self._raw + self._buf)
            self._raw, self._buf, self._mode = "", "", CONTENT

    def _step(self) -> bool:
        if self._mode == CONTENT:
            self._emit_content(self._buf)
            self._buf = ""
            return False
        if self._mode == AFTER_LIST:
            return self._skip_end_tag()
        if self._mode == START:
            head = self._buf.lstrip()
            if head.startswith(PYTHON_START):
                self._raw += self._buf[:len(self._buf) - len(head) + len(PYTHON_START)]
                self._buf = head[len(PYTHON_START):]
                return True
            if head.startswith("["):
                self._mode, self._tried = LIST, 0
                self._raw += self._buf[:len(self._buf) - len(head)]
                self._buf = head
                return True
            if not head or partial_tag_length(head, (PYTHON_START,)) == len(head):
                return False
            self._mode, self._buf, self._raw = CONTENT, self._raw + self._buf, ""
            return True
        return self._step_list()

    def _step_list(self) -> bool:
        end = self._buf.find("]", self._tried)
        while end >= 0:
            parsed = _parse_call_list(self._buf[:end + 1])
            if parsed is not None:
                text, rest = self._buf[:end + 1], self._buf[end + 1:]
                if parsed:
                    self._emit_tool_calls(parsed)
                    self._mode = AFTER_LIST
                else:
                    self._emit_content(self._raw + text)
                    self._mode = CONTENT
                self._raw, self._buf = "", rest
                return True
            end = self._buf.find("]", end + 1)
        self._tried = len(self._buf)
        return False

    def _skip_end_tag(self) -> bool:
        """After the list: drop a closing `<|python_end|>`, then the rest is content."""
        head = self._buf.lstrip()
        if head.startswith(PYTHON_END):
            self._buf = head[len(PYTHON_END):]
        elif not head or partial_tag_length(head, (PYTHON_END,)) == len(head):
            return False
        self._mode = CONTENT
        return True


def _parse_call_list(text: str) -> list[ToolCall] | None:
    """Tool calls from a complete list expression; [] when it is valid Python but not calls; None if incomplete."""
    try:
        tree = ast.parse(text.strip(), mode="eval").body
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    if not isinstance(tree, ast.List) or not tree.elts:
        return []
    calls = [_call_from_node(node) for node in tree.elts]
    return calls if all(calls) else []


def _call_from_node(node: ast.expr) -> ToolCall | None:
    if not isinstance(node, ast.Call) or node.args:
        return None
    try:
        name = ast.unparse(node.func)
        if not all(part.isidentifier() for part in name.split(".")):
            return None
        arguments = {kw.arg: ast.literal_eval(kw.value) for kw in node.keywords if kw.arg}
        if len(arguments) != len(node.keywords):
            return None
        json.dumps(arguments)
    except (ValueError, TypeError, SyntaxError, RecursionError):
        return None
    return make_tool_call(name, arguments)
