"""Routes what the library would print to the host's log callback (dynamo_set_log_callback): log records,
warnings, tracebacks nobody could report (threads, unraisable exceptions) and sys.stderr. Installed only
while the host has a callback; removed again it leaves the interpreter as it found it."""
from __future__ import annotations

import io
import logging
import sys
import threading
import traceback
from typing import Callable

Emit = Callable[[int, str, str], None]  # (level, logger name, message): C's dyn_log_emit
STDERR_LOGGER = "stderr"


class CallbackHandler(logging.Handler):
    """A handler that formats each record (with its traceback) and hands it to the host."""

    def __init__(self, emit: Emit, level: int):
        super().__init__(level)
        self.emit_to_host = emit

    def handle(self, record: logging.LogRecord) -> bool:
        """No handler lock: the host's callback is thread-safe, and a lock held across it could deadlock."""
        if not self.filter(record):
            return False
        self.emit(record)
        return True

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
            if record.exc_info:
                message += "\n" + "".join(traceback.format_exception(*record.exc_info)).rstrip("\n")
            self.emit_to_host(record.levelno, record.name, message)
        except Exception:
            pass  # logging must never raise into the code that logged


class StderrToLog(io.TextIOBase):
    """sys.stderr while a callback is set: one WARNING per complete line, logger "stderr"."""

    def __init__(self, emit: Emit):
        self.emit_to_host, self.pending = emit, ""
        self.lock = threading.Lock()

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        with self.lock:
            self.pending += text
            *lines, self.pending = self.pending.split("\n")
        for line in lines:
            self.emit_to_host(logging.WARNING, STDERR_LOGGER, line)
        return len(text)

    def flush(self) -> None:
        with self.lock:
            line, self.pending = self.pending, ""
        if line:
            self.emit_to_host(logging.WARNING, STDERR_LOGGER, line)


class LogBridge:
    """Installs and removes the routing; configure() follows each dynamo_set_log_callback/level call."""

    def __init__(self, emit: Emit):
        self.emit = emit
        self.handler: CallbackHandler | None = None
        self.saved: dict = {}

    def configure(self, enabled: bool, level: int) -> None:
        """Route to the host at `level` and above (enabled), or restore what was there before."""
        if enabled and self.handler is None:
            self._install(level)
        elif not enabled and self.handler is not None:
            self._remove()
        if self.handler is not None:
            self.handler.setLevel(level)
            logging.getLogger().setLevel(level)

    def _install(self, level: int) -> None:
        root = logging.getLogger()
        self.saved = {"root_level": root.level, "stderr": sys.stderr, "threading": threading.excepthook,
                      "unraisable": sys.unraisablehook}
        self.handler = CallbackHandler(self.emit, level)
        root.addHandler(self.handler)
        logging.captureWarnings(True)
        sys.stderr = StderrToLog(self.emit)
        threading.excepthook = self._thread_exception
        sys.unraisablehook = self._unraisable

    def _remove(self) -> None:
        root = logging.getLogger()
        root.removeHandler(self.handler)
        self.handler = None
        logging.captureWarnings(False)
        root.setLevel(self.saved["root_level"])
        if isinstance(sys.stderr, StderrToLog):
            sys.stderr.flush()
            sys.stderr = self.saved["stderr"]
        threading.excepthook = self.saved["threading"]
        sys.unraisablehook = self.saved["unraisable"]

    def _thread_exception(self, args: threading.ExceptHookArgs) -> None:
        name = args.thread.name if args.thread is not None else "?"
        text = "".join(traceback.format_exception(args.exc_type, args.exc_value, args.exc_traceback)).rstrip("\n")
        self.emit(logging.ERROR, "threading", f"Exception in thread {name}:\n{text}")

    def _unraisable(self, unraisable) -> None:
        exc = unraisable.exc_value
        text = "".join(traceback.format_exception(type(exc), exc, unraisable.exc_traceback)).rstrip("\n") \
            if exc is not None else ""
        self.emit(logging.ERROR, "unraisable", f"{unraisable.err_msg or 'Exception ignored'}: "
                                               f"{unraisable.object!r}\n{text}")
