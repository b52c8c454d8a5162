"""Pythonic tool calls (Llama 3.2/4): `[get_weather(city="Paris"), f(a=1)]`, streamed
as they are written (pythonic_call reads them)."""
from __future__ import annotations

from .base import ToolCallParser
from .text_scan import partial_tag_length
from .pythonic_call import CLOSE, END, INVALID, WAIT, PythonicListReader

PYTHON_START, PYTHON_END = "<|python_start|>", "<|python_end|>"
START, CONTENT, LIST, AFTER_LIST = "start", "content", "list", "after_list"


class PythonicToolCallParser(ToolCallParser):
    """Output that starts with `[` is tried as a Python list of calls with literal keyword arguments."""

    name = "pythonic"

    def __init__(self) -> None:
        super().__init__()
        self._mode = START
        self._raw = ""        # consumed but undecided text (leading whitespace, <|python_start|>)
        self._reader = PythonicListReader()
        self._announced = False   # the reader's current call has been sent (id, name)
        self._sent = 0            # characters of its arguments sent
        self._calls_made = False  # a call of this list is out: what turns out not to be calls is content
        self._element = 0         # where the list's current element starts, after its `[`

    def _scan(self, final: bool) -> None:
        while self._step():
            pass
        if final:
            if self._mode == LIST:
                self._not_calls(self._buf[1:])
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
                self._mode, self._reader, self._element = LIST, PythonicListReader(), 0
                self._announced = self._calls_made = False
                self._raw += self._buf[:len(self._buf) - len(head)]
                self._buf = head
                return True
            if not head or partial_tag_length(head, (PYTHON_START,)) == len(head):
                return False
            self._mode, self._buf, self._raw = CONTENT, self._raw + self._buf, ""
            return True
        return self._step_list()

    def _step_list(self) -> bool:
        """Read the list after its `[` as it grows: a call streams once certain (see pythonic_call)."""
        reader, text = self._reader, self._buf[1:]
        while True:
            kind = reader.step(text)
            call = reader.call
            if kind == INVALID:
                return self._not_calls(text)
            if call is not None and call.certain:
                if not self._announced:
                    self._open_call(call.name)
                    self._announced, self._sent = True, 0
                self._call_arguments(call.arguments[self._sent:])
                self._sent = len(call.arguments)
            if kind == CLOSE:
                self._close_call()
                reader.call = None
                self._announced, self._calls_made = False, True
                self._element = reader.pos
            elif kind == END:
                if not self._calls_made:   # `[]`: a list, not calls
                    return self._not_calls(text)
                self._mode, self._raw, self._buf = AFTER_LIST, "", text[reader.pos:]
                return True
            elif kind == WAIT:
                return False
            elif reader.phase == "element":   # past a `,`: the next element starts here
                self._element = reader.pos

    def _not_calls(self, text: str) -> bool:
        """What follows is not (or no longer) calls: it is content; a call already streaming ends here."""
        if self._announced:
            self._close_call()
            self._announced, self._calls_made = False, True
            self._element = self._reader.pos
        self._emit_content(text[self._element:] if self._calls_made else self._raw + self._buf)
        self._mode, self._raw, self._buf = CONTENT, "", ""
        return True

    def _skip_end_tag(self) -> bool:
        """After the list: drop a closing `<|python_end|>`, then the rest is content."""
        head = self._buf.lstrip()
        if head.startswith(PYTHON_END):
            self._buf = head[len(PYTHON_END):]
        elif not head or partial_tag_length(head, (PYTHON_END,)) == len(head):
            return False
        self._mode = CONTENT
        return True


