"""Llama 3 JSON tool calls: `{"name": ..., "parameters": {...}}`, optionally after `<|python_tag|>`, `;`-separated."""
from __future__ import annotations

from .base import ToolCallParser
from .json_call import JsonCallScan
from .text_scan import decode_json_prefix, partial_tag_length, split_at_tag
from .deltas import tool_call_from_json

PYTHON_TAG = "<|python_tag|>"
START, CONTENT, JSON = "start", "content", "json"


class Llama3JsonToolCallParser(ToolCallParser):
    """Output that starts with `{` or contains `<|python_tag|>` is read as JSON tool calls; the rest is content."""

    name = "llama3_json"

    def __init__(self) -> None:
        super().__init__()
        self._mode = START
        self._raw = ""   # text consumed in JSON mode but not yet decided (tag, separators)
        self._scan_call: JsonCallScan | None = None   # the call streaming now (see json_call)

    def _scan(self, final: bool) -> None:
        while self._step(final):
            pass
        if final:
            if self._scan_call is not None:   # the model stopped inside a streaming call: it ends there
                self._scan_call, self._buf = None, ""
                self._close_call()
            self._emit_content(self._raw + self._buf)
            self._raw, self._buf, self._mode = "", "", CONTENT

    def _step(self, final: bool) -> bool:
        """Make one decision on the pending text; False when more text is needed."""
        if self._mode == START:
            head = self._buf.lstrip()
            if head.startswith("{"):
                self._enter_json(self._buf[:len(self._buf) - len(head)], head)
            elif head.startswith(PYTHON_TAG):
                self._enter_json(self._buf[:len(self._buf) - len(head) + len(PYTHON_TAG)],
                                 head[len(PYTHON_TAG):])
            elif not head or partial_tag_length(head, (PYTHON_TAG,)) == len(head):
                return False
            else:
                self._mode = CONTENT
            return True
        if self._mode == CONTENT:
            before, after, held = split_at_tag(self._buf, PYTHON_TAG)
            self._emit_content(before)
            if after is None:
                self._buf = held
                return False
            self._enter_json(PYTHON_TAG, after)
            return True
        return self._step_json()

    def _enter_json(self, raw: str, rest: str) -> None:
        self._mode, self._raw, self._buf = JSON, raw, rest

    def _step_json(self) -> bool:
        head = self._buf.lstrip().lstrip(";").lstrip()
        if not head:
            return False
        skipped = self._buf[:len(self._buf) - len(head)]
        if not head.startswith("{"):   # text after the calls (or not a call at all) is content
            self._emit_content(self._raw + skipped)
            self._mode, self._raw, self._buf = CONTENT, "", head
            return True
        if self._stream_call(head):
            return True
        if self._scan_call is not None:
            return False
        decoded = decode_json_prefix(head) if "}" in head else None
        if decoded is None:
            return False
        value, end = decoded
        call = tool_call_from_json(value)
        if call is None:
            self._emit_content(self._raw + skipped + head[:end])
            self._mode = CONTENT
        else:
            self._emit_tool_calls([call])
        self._raw, self._buf = "", head[end:]
        return True

    def _stream_call(self, head: str) -> bool:
        """Stream the call at the start of `head` once certain; True when it has ended (the rest is pending)."""
        if self._scan_call is None:
            self._scan_call = JsonCallScan.open_object(head)
            if self._scan_call is None:
                return False
            self._open_call(self._scan_call.name)
        self._call_arguments(self._scan_call.advance(head))
        if self._scan_call.end is None:
            return False
        end, self._scan_call = self._scan_call.end, None
        self._close_call()
        self._raw, self._buf = "", head[end:]
        return True
