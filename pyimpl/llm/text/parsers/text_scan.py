"""Helpers for scanning streamed text for tags that may arrive split across chunks."""
from __future__ import annotations

import json
from typing import Any, Iterable

_JSON = json.JSONDecoder()


def partial_tag_length(text: str, tags: Iterable[str]) -> int:
    """Length of the longest tail of `text` that is a proper prefix of one of `tags` (to hold back)."""
    longest = 0
    for tag in tags:
        for k in range(min(len(tag) - 1, len(text)), longest, -1):
            if text.endswith(tag[:k]):
                longest = k
                break
    return longest


def split_at_tag(text: str, tag: str) -> tuple[str, str | None, str]:
    """Split pending text at `tag`: (safe text before it, the rest after the tag or None, held-back tail).

    When the tag is absent, the tail that may start it is held back and returned as the third item.
    """
    i = text.find(tag)
    if i >= 0:
        return text[:i], text[i + len(tag):], ""
    held = partial_tag_length(text, (tag,))
    return text[:len(text) - held], None, text[len(text) - held:]


def decode_json_prefix(text: str) -> tuple[Any, int] | None:
    """Decode one JSON value at the start of `text` (after whitespace): (value, end index), or None."""
    start = len(text) - len(text.lstrip())
    try:
        return _JSON.raw_decode(text, start)
    except ValueError:
        return None
