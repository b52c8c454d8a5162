"""Incremental reading of a pythonic call list `[f(a=1, b="text"), g()]` as it is generated: each call's
OpenAI JSON arguments (`{"a": 1, "b": "text"}`, as json.dumps writes them) grow keyword by keyword, a quoted
string value character by character. Every decision depends on the text only, never on its chunking."""
from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass, field

_CALL = re.compile(r"\s*([A-Za-z_][\w.]*)\s*\(")
_CALL_SO_FAR = re.compile(r"\s*([A-Za-z_][\w.]*\s*)?$")
_KWARG = re.compile(r"\s*([A-Za-z_]\w*)\s*=\s*")
_KWARG_SO_FAR = re.compile(r"\s*([A-Za-z_]\w*\s*(=\s*)?)?$")
WAIT, INVALID, NEXT, CLOSE, END = "wait", "invalid", "next", "close", "end"


@dataclass
class PythonicCall:
    """The call being read: its name, its JSON arguments so far, and whether it is certainly a call
    (a keyword value began as a string or ended as a literal, or the call closed)."""
    name: str
    arguments: str = ""
    keys: set = field(default_factory=set)
    certain: bool = False


class PythonicListReader:
    """Reads a call list's text after its `[` (a string that only grows) from `pos`, one move per `step`."""

    def __init__(self) -> None:
        self.pos = 0
        self.phase = "element"     # element | kwarg | value | after_value | after_call
        self.call: PythonicCall | None = None
        self._value_start = 0
        self._value_json = ""      # JSON of the current string value added to `arguments` so far
        self._scan = _ValueScan(0)

    def step(self, text: str) -> str:
        """WAIT: needs more text; INVALID: not a call list from `pos` on; NEXT: progress; CLOSE: the current
        call ended; END: the list's `]` (pos is past it)."""
        rest = text[self.pos:]
        head = rest.lstrip()
        skip = len(rest) - len(head) + 1
        if self.phase == "after_call":
            if not head:
                return WAIT
            if head[0] not in ",]":
                return INVALID
            self.pos, self.phase = self.pos + skip, "element"
            return END if head[0] == "]" else NEXT
        if self.phase == "element":
            m = _CALL.match(rest)
            if m is None:
                return WAIT if _CALL_SO_FAR.match(rest) else INVALID
            if not all(part.isidentifier() for part in m.group(1).split(".")):
                return INVALID
            self.call, self.pos, self.phase = PythonicCall(m.group(1)), self.pos + m.end(), "kwarg"
            return NEXT
        if self.phase in ("kwarg", "after_value"):
            if head.startswith(")"):
                self.call.arguments = (self.call.arguments or "{") + "}"
                self.call.certain, self.pos, self.phase = True, self.pos + skip, "after_call"
                return CLOSE
            if self.phase == "after_value":
                if not head:
                    return WAIT
                if head[0] != ",":
                    return INVALID
                self.pos, self.phase = self.pos + skip, "kwarg"
                return NEXT
            m = _KWARG.match(rest)
            if m is None or m.end() == len(rest):
                return WAIT if _KWARG_SO_FAR.match(rest) else INVALID
            if m.group(1) in self.call.keys:
                return INVALID
            self.call.keys.add(m.group(1))
            self.call.arguments += (", " if self.call.arguments else "{") + json.dumps(m.group(1)) + ": "
            self.pos += m.end()
            self._value_start, self._value_json, self.phase = self.pos, "", "value"
            self._scan = _ValueScan(self.pos)
            return NEXT
        return self._value(text)

    def _value(self, text: str) -> str:
        scan = self._scan
        end, opened, plain = scan.advance(text)
        if opened or plain:   # more of a quoted string value: it streams (JSON escapes do not depend on context)
            piece = ('"' if opened else "") + json.dumps(plain, ensure_ascii=False)[1:-1]
            self.call.arguments += piece
            self._value_json, self.call.certain = self._value_json + piece, True
        if end is None:
            return NEXT if opened or plain else WAIT
        try:
            whole = json.dumps(ast.literal_eval(text[self._value_start:end].strip()), ensure_ascii=False)
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            return INVALID
        if end < 0 or not whole.startswith(self._value_json):
            return INVALID
        self.call.arguments += whole[len(self._value_json):]
        self.call.certain, self.pos, self.phase = True, end, "after_value"
        return NEXT


class _ValueScan:
    """Finds where a keyword value ends, scanning only new text; collects the plain start of a quoted string
    value (up to a backslash or its closing quote) so that it can stream."""

    def __init__(self, start: int) -> None:
        self.i, self.depth, self.quote, self.escaped = start, 0, "", False
        self.started = False
        self.plain = False   # inside the value's first string, no backslash yet

    def advance(self, text: str) -> tuple[int | None, bool, str]:
        """(index of the ending `,`/`)`, -1 for a stray bracket, None not yet; whether a string value opened
        in this text; the new plain text of that string)."""
        out: list[str] = []
        opened = False
        i = self.i
        while i < len(text):
            c = text[i]
            i += 1
            if not self.started:
                if c.isspace():
                    continue
                self.started = True
                if c in "'\"":
                    self.quote, self.plain, opened = c, True, True
                    continue
            if self.quote:
                if self.escaped:
                    self.escaped = False
                elif c == "\\":
                    self.escaped, self.plain = True, False
                elif c == self.quote:
                    self.quote, self.plain = "", False
                elif self.plain:
                    out.append(c)
            elif c in "'\"":
                self.quote = c
            elif c in "([{":
                self.depth += 1
            elif c in ")]}":
                if self.depth == 0:
                    self.i = i
                    return (i - 1 if c == ")" else -1), opened, "".join(out)
                self.depth -= 1
            elif c == "," and self.depth == 0:
                self.i = i
                return i - 1, opened, "".join(out)
        self.i = i
        return None, opened, "".join(out)

