"""Process logging for the runtime's programs (frontend, worker): text lines or JSON lines.

`--log-format json`, or DYN_LOGGING_JSONL=1 as Dynamo names it, writes one JSON object per record: time, level,
target (the logger), message, the record's `extra` fields (an access log line's method, path, status, ...) and
the exception's traceback when there is one.
"""
from __future__ import annotations

import json
import logging
import os
import sys
from datetime import datetime, timezone

LOG_FORMATS = ("text", "json")
JSONL_ENV = "DYN_LOGGING_JSONL"
# LogRecord's own attributes, and uvicorn's `color_message` (the message again, with terminal colours)
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "color_message"}


class JsonLineFormatter(logging.Formatter):
    """One JSON object per record (never more than one line: newlines in the message are escaped)."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {"time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
                 "level": record.levelname, "target": record.name, "message": record.getMessage()}
        entry.update((k, v) for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_"))
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


def default_log_format() -> str:
    """json when DYN_LOGGING_JSONL is set to a true value (1, true, yes, on), else text."""
    return "json" if os.environ.get(JSONL_ENV, "").strip().lower() in ("1", "true", "yes", "on") else "text"


def configure_logging(level: str, log_format: str | None = None) -> None:
    """Root logging at `level` on stderr in `log_format` (None: default_log_format()); replaces earlier setup."""
    log_format = log_format or default_log_format()
    if log_format not in LOG_FORMATS:
        raise ValueError(f"unknown log format {log_format!r}; expected one of {LOG_FORMATS}")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonLineFormatter() if log_format == "json"
                         else logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)
