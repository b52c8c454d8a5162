"""Mistral tool calls: `[TOOL_CALLS] [{"name": ..., "arguments": {...}}, ...]` or `[TOOL_CALLS]name[ARGS]{...}`."""
from __future__ import annotations

from .base import ToolCallParser
from .json_call import JsonCallScan
from .text_scan import decode_json_prefix, split_at_tag
from .deltas import ToolCall, make_tool_call, tool_call_from_json

TOOL_CALLS, ARGS = "[TOOL_CALLS]", "[ARGS]"


class MistralToolCallParser(ToolCallParser):
    """Text before `[TOOL_CALLS]` is content; what follows is a JSON list of calls (or `name[ARGS]{json}`).
    Each call streams once its name and the start of its arguments object are in (see json_call)."""

    name = "mistral"

    def __init__(self) -> None:
        super().__init__()
        self._in_calls = False
        self._in_list = False      # inside `[...]`, after at least one streamed call
        self._scan_call: JsonCallScan | None = None
        self._lead = 0             # characters of the buffer before the streaming call's text

    def _scan(self, final: bool) -> None:
        while True:
            if not self._in_calls:
                before, after, held = split_at_tag(self._buf, TOOL_CALLS)
                self._emit_content(before)
                if after is None:
                    self._buf = held
                    break
                self._in_calls, self._buf = True, after
            elif not self._read_calls():
                break
        if final:
            if self._scan_call is not None:   # the model stopped inside a streaming call: it ends there
                self._scan_call, self._buf = None, ""
                self._close_call()
            if self._in_list:
                self._buf = self._buf.lstrip().removeprefix("]")
            self._emit_content((TOOL_CALLS if self._in_calls and not self._in_list else "") + self._buf)
            self._in_calls = self._in_list = False
            self._buf = ""

    def _read_calls(self) -> bool:
        """Decode the calls after `[TOOL_CALLS]`; False when more text is needed."""
        if self._scan_call is not None:
            return self._advance_call()
        head = self._buf.lstrip()
        if self._in_list:   # after a streamed call: `, {next}` or the closing `]`
            if head.startswith(","):
                head = head[1:].lstrip()
            elif head.startswith("]"):
                self._in_calls = self._in_list = False
                self._buf = head[1:]
                return True
            elif head:   # not a list any more: the rest is content
                self._in_calls = self._in_list = False
                self._buf = head
                return True
            return bool(head) and (self._start_call(head, JsonCallScan.open_object(head)) or self._list_item(head))
        if not head:
            return False
        if head[0] == "[":
            scan = JsonCallScan.open_object(head[1:].lstrip())
            if scan is not None:
                self._in_list = True
                return self._start_call(head[1:].lstrip(), scan)
        if head[0] not in "[{":
            name, args_marker, args = head.partition(ARGS)
            if args_marker and self._start_call(args, JsonCallScan.open_arguments(name.strip(), args)):
                return True
        return self._read_whole(head)

    def _start_call(self, text: str, scan: JsonCallScan | None) -> bool:
        """Stream the call at the start of `text` (the buffer's tail) when `scan` found one."""
        if scan is None:
            return False
        self._scan_call, self._lead = scan, len(self._buf) - len(text)
        self._open_call(scan.name)
        return self._advance_call() or True

    def _advance_call(self) -> bool:
        text = self._buf[self._lead:]
        self._call_arguments(self._scan_call.advance(text))
        if self._scan_call.end is None:
            return False
        self._buf = text[self._scan_call.end:]
        self._scan_call = None
        self._close_call()
        if not self._in_list:
            self._in_calls = False
        return True

    def _list_item(self, head: str) -> bool:
        """A list item after a streamed call that does not stream: a whole call once complete, else content."""
        decoded = decode_json_prefix(head) if "}" in head else None
        if decoded is None:
            return False
        call = tool_call_from_json(decoded[0])
        if call is None:
            self._in_calls = self._in_list = False
            self._buf = head
        else:
            self._emit_tool_calls([call])
            self._buf = head[decoded[1]:]
        return True

    def _read_whole(self, head: str) -> bool:
        """Calls that do not stream (arguments as a string, keys in another order): decoded when complete."""
        if head[0] in "[{":
            closer = "]" if head[0] == "[" else "}"
            decoded = decode_json_prefix(head) if closer in head else None
            if decoded is None:
                return False
            calls = _calls_from_json(decoded[0])
            rest = head[decoded[1]:]
        else:
            name, args_marker, args = head.partition(ARGS)
            decoded = decode_json_prefix(args) if args_marker and "}" in args else None
            if decoded is None:
                return False
            call = make_tool_call(name.strip(), decoded[0])
            calls = [call] if call else None
            rest = args[decoded[1]:]
        if calls:
            self._emit_tool_calls(calls)
        else:
            self._emit_content(TOOL_CALLS + self._buf[:len(self._buf) - len(rest)])
        self._in_calls, self._buf = False, rest
        return True


def _calls_from_json(value: object) -> list[ToolCall] | None:
    items = value if isinstance(value, list) else [value]
    calls = [tool_call_from_json(item) for item in items]
    return calls if calls and all(calls) else None
