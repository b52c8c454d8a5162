"""Annotated: one response chunk plus its optional SSE-style event, comments and id."""
from __future__ import annotations

from typing import Any, Optional


class Annotated:
    """Wraps a chunk as Dynamo does: `.data()`, `.event()`, `.comments()`, `.id()`, `.is_error()`."""

    __slots__ = ("_data", "_event", "_comments", "_id")

    def __init__(self, data: Any = None, event: Optional[str] = None,
                 comments: Optional[list[str]] = None, id: Optional[str] = None):
        self._data = data
        self._event = event
        self._comments = comments
        self._id = id

    def data(self) -> Any:
        return self._data

    def event(self) -> Optional[str]:
        return self._event

    def comments(self) -> list[str]:
        return self._comments or []

    def id(self) -> Optional[str]:
        return self._id

    def is_error(self) -> bool:
        return self._event == "error"

    def __repr__(self) -> str:
        return f"Annotated(data={self._data!r}, event={self._event!r})"
