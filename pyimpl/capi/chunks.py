"""Turns response items into what C makes dynamo_chunk_t's of: for chat, (JSON bytes, text delta, token ids,
finish code) per chunk in a ChunkBatch; for generic endpoints, one JSON array per hand-over that C splits."""
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
    """A response of a generic endpoint: token_ids from its "token_ids" field, no text (the
    reference for what C reads from endpoint_array's elements)."""
    if type(item) is dict:
        ids = item.get("token_ids")
        reason = item.get("finish_reason")
        return (_encode(item), None, ids if type(ids) is list else None,
                finish_code(reason) if reason is not None else FINISH_NONE)
    return _encode(item), None, None, FINISH_NONE


class ChunkBatch:
    """Chunks of one stream waiting to be handed to C in a single call (one per loop iteration):
    JSON and text bytes back to back, token ids back to back, 4 ints of metadata per chunk."""

    __slots__ = ("jsons", "texts", "meta", "ids")

    def __init__(self):
        self.jsons: list[bytes] = []
        self.texts: list[bytes] = []
        self.meta: list[int] = []   # json_len, text_len (-1: no text), num_token_ids, finish_reason
        self.ids: list[int] = []

    def __len__(self) -> int:
        return len(self.jsons)

    def add(self, json: bytes, text: bytes | None, ids: list[int] | None, finish: int) -> None:
        self.jsons.append(json)
        if text is None:
            text_len = -1
        else:
            text_len = len(text)
            self.texts.append(text)
        if ids:
            self.ids.extend(ids)
            self.meta += (len(json), text_len, len(ids), finish)
        else:
            self.meta += (len(json), text_len, 0, finish)

    def fields(self):
        """The chunks as (json, text, token_ids, finish) tuples (for test sinks)."""
        texts, ids = iter(self.texts), iter(self.ids)
        for i, json in enumerate(self.jsons):
            _, text_len, n_ids, finish = self.meta[4 * i: 4 * i + 4]
            yield (json, None if text_len < 0 else next(texts), [next(ids) for _ in range(n_ids)] or None, finish)


def chat_batch(items: list) -> ChunkBatch:
    """The ChunkBatch of OpenAI chat.completion.chunk dicts (see chat_chunk)."""
    batch = ChunkBatch()
    add = batch.add
    for item in items:
        add(*chat_chunk(item))
    return batch


def endpoint_array(items: list) -> bytes:
    """Generic endpoint responses as one compact JSON array: C splits it and reads each element's
    token_ids and finish_reason as endpoint_chunk does (capi/src/chunk_scan.c), so the hot path
    costs Python one encode per batch."""
    return _encode(items)
