"""Turns response items into the fields of a dynamo_chunk_t: JSON bytes, text delta, token ids, finish code."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgspec

from pyimpl.capi.status import FINISH_NONE, finish_code

_encode = msgspec.json.Encoder().encode


@dataclass
class ChunkFields:
    """One chunk as C receives it."""

    json: bytes
    text: bytes | None
    token_ids: list[int] | None
    finish_reason: int


def chat_chunk(item: dict) -> ChunkFields:
    """An OpenAI chat.completion.chunk: text is the first choice's content delta."""
    text, finish, ids = None, FINISH_NONE, None
    choices = item.get("choices") or ()
    if choices:
        choice = choices[0]
        content = (choice.get("delta") or {}).get("content")
        text = content.encode() if isinstance(content, str) else None
        finish = finish_code(choice.get("finish_reason"))
        ids = choice.get("token_ids")
    return ChunkFields(_encode(item), text, ids, finish)


def endpoint_chunk(item: Any) -> ChunkFields:
    """A response of a generic endpoint: token_ids from its "token_ids" field, no text."""
    if isinstance(item, dict):
        ids = item.get("token_ids")
        return ChunkFields(_encode(item), None, ids if isinstance(ids, list) else None,
                           finish_code(item.get("finish_reason")))
    return ChunkFields(_encode(item), None, None, FINISH_NONE)
