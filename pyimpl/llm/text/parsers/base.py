"""Shared machinery of the streaming tool-call parsers: pending text, content output, tool call output."""
from __future__ import annotations

from .deltas import ToolCall, ToolCallDelta, ToolParseDelta, new_tool_call_id


class ToolCallParser:
    """Base of the streaming tool-call parsers: subclasses implement `_scan(final)` over `self._buf`.

    `_scan` consumes what it can decide on from `self._buf` and leaves the rest there; decisions
    depend only on the text, never on how it was chunked, so feeding one character at a time and
    feeding everything at once give the same content and tool calls.
    """

    name = ""

    def __init__(self) -> None:
        self._buf = ""
        self._out = ToolParseDelta()
        self._after_tool_call = False   # drop whitespace between and after tool calls
        self.tool_calls_count = 0       # tool calls found so far (finish reason "tool_calls")
        self._started = 0               # tool calls begun so far: the next call's index
        self._streaming: ToolCall | None = None   # the call whose arguments are streaming

    def feed(self, text: str) -> ToolParseDelta:
        """Add streamed text; return the content that is safe to emit and any tool calls completed."""
        self._buf += text
        return self._run(final=False)

    def finish(self) -> ToolParseDelta:
        """End of stream: resolve held-back text (an unfinished or malformed call becomes content)."""
        return self._run(final=True)

    def _run(self, final: bool) -> ToolParseDelta:
        self._out = ToolParseDelta()
        self._scan(final)
        return self._out

    def _scan(self, final: bool) -> None:
        raise NotImplementedError

    def _emit_content(self, text: str) -> None:
        if self._after_tool_call:
            text = text.lstrip()
            if not text:
                return
            self._after_tool_call = False
        self._out.content += text

    def _emit_tool_calls(self, calls: list[ToolCall]) -> None:
        """Whole calls, decided at once: each is one piece with id, name and all its arguments."""
        for call in calls:
            self._out.tool_call_deltas.append(ToolCallDelta(self._started, call.id, call.name, call.arguments))
            self._started += 1
        self._out.tool_calls.extend(calls)
        self.tool_calls_count += len(calls)
        self._after_tool_call = True

    def _open_call(self, name: str) -> None:
        """A call is certain from here on: send its id and name; its arguments follow with `_call_arguments`."""
        self._streaming = ToolCall(new_tool_call_id(), name, "")
        self._out.tool_call_deltas.append(ToolCallDelta(self._started, self._streaming.id, name, ""))
        self._started += 1

    def _call_arguments(self, text: str) -> None:
        """More argument text of the streaming call (joined to this step's piece of it when there is one)."""
        if not text:
            return
        self._streaming.arguments += text
        last = self._out.tool_call_deltas[-1] if self._out.tool_call_deltas else None
        if last is not None and last.index == self._started - 1:
            last.arguments += text
        else:
            self._out.tool_call_deltas.append(ToolCallDelta(self._started - 1, arguments=text))

    def _close_call(self) -> None:
        """The streaming call is complete (or the stream ended inside it): it joins the finished calls."""
        self._out.tool_calls.append(self._streaming)
        self._streaming = None
        self.tool_calls_count += 1
        self._after_tool_call = True
