"""Turns response items into the fields of a dynamo_chunk_t: (JSON bytes, text delta, token ids, finish code).
Plain tuples: this runs once per streamed chunk."""
from __future__ import annotations

from typing import Any

import msgspec

from pyimpl.capi.status import FINISH_NONE, finish_code

_encode = msgspec.json.Encoder().encode

ChunkFields = tuple  # (json: bytes, text: bytes | None, token_ids: list[int] | None, finish_reason: int)


def chat_chunk(item: dict) -> ChunkFields:
    """An OpenAI chat.completion.chunk: text is the first choice's content delta."""
    choices = item.get("choices")
    if not choices:
        return _encode(item), None, None, FINISH_NONE
    choice = choices[0]
    content = (choice.get("delta") or {}).get("content")
    text = content.encode() if isinstance(content, str) else None
    return _encode(item), text, choice.get("token_ids"), finish_code(choice.get("finish_reason"))


def endpoint_chunk(item: Any) -> ChunkFields:
    """A response of a generic endpoint: token_ids from its "token_ids" field, no text."""
    if type(item) is dict:
        ids = item.get("token_ids")
        reason = item.get("finish_reason")
        return (_encode(item), None, ids if type(ids) is list else None,
                finish_code(reason) if reason is not None else FINISH_NONE)
    return _encode(item), None, None, FINISH_NONE
