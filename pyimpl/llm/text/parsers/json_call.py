"""One JSON tool call streamed as it is generated: the name is sent as soon as it is complete, the
arguments object's text piece by piece; a string-aware bracket count finds where the arguments and the
call end, so decisions depend only on the text, never on how it was chunked."""
from __future__ import annotations

import json
import re

# `{"name": "...", "arguments"|"parameters": {` and the first character of a member (or the closing brace):
# only then is the text certainly a call (an arguments string, `{oops}` or a name after the arguments is
# left to the whole-call parse at the end).
_HEAD = re.compile(r'\{\s*"name"\s*:\s*"((?:[^"\\]|\\.)+)"\s*,\s*"(?:arguments|parameters)"\s*:\s*(\{)\s*["}]')
_ARGS_HEAD = re.compile(r'\s*(\{)\s*["}]')


class JsonCallScan:
    """Where a streamed call's arguments and the call itself end, scanning text that only grows."""

    def __init__(self, name: str, args_start: int, depth: int):
        self.name = name
        self.pos = args_start    # next character to scan
        self.depth = depth       # open brackets before the arguments' `{` (1 inside the call object)
        self._args_depth = depth
        self._in_string = self._escaped = False
        self.args_done = False
        self.end: int | None = None   # index just past the call, once seen

    @classmethod
    def open_object(cls, text: str) -> JsonCallScan | None:
        """A scan of `{"name": ..., "arguments": {...}}` at the start of `text`, or None when not certain yet."""
        m = _HEAD.match(text)
        name = _decode_name(m.group(1)) if m else None
        return cls(name, m.start(2), 1) if name else None

    @classmethod
    def open_arguments(cls, name: str, text: str) -> JsonCallScan | None:
        """A scan of a bare arguments object at the start of `text` (Mistral's `name[ARGS]{...}`)."""
        m = _ARGS_HEAD.match(text)
        return cls(name, m.start(1), 0) if m and name else None

    def advance(self, text: str) -> str:
        """Scan what `text` added since the last call; return the new argument text."""
        start = self.pos
        args_end = None
        i = start
        while i < len(text) and self.end is None:
            c = text[i]
            i += 1
            if self._in_string:
                if self._escaped:
                    self._escaped = False
                elif c == "\\":
                    self._escaped = True
                elif c == '"':
                    self._in_string = False
            elif c == '"':
                self._in_string = True
            elif c in "{[":
                self.depth += 1
            elif c in "}]":
                self.depth -= 1
                if self.depth == self._args_depth and not self.args_done:
                    self.args_done, args_end = True, i
                if self.depth == 0:
                    self.end = i
        self.pos = i
        if self.args_done and args_end is None:   # the arguments had ended before this text
            return ""
        return text[start:args_end if args_end is not None else i]


def _decode_name(raw: str) -> str | None:
    try:
        name = json.loads(f'"{raw}"')
    except ValueError:
        return None
    return name.strip() or None
