"""Turns response items into what C makes dynamo_chunk_t's of: for chat and Responses events, (JSON bytes, text
delta, token ids, finish code, choice index) per chunk in a ChunkBatch; for generic endpoints, one JSON array per
hand-over that C splits."""
from __future__ import annotations

import contextlib
from typing import Any, AsyncIterator

import msgspec

from pyimpl.capi.status import FINISH_ERROR, FINISH_LENGTH, FINISH_NONE, FINISH_STOP, FINISH_TOOL_CALLS, finish_code

_encode = msgspec.json.Encoder().encode
META = 5  # ints per chunk in ChunkBatch.meta, as dyn_stream_push_batch reads them (capi/src/dyn_internal.h)
NO_CHOICE = -1  # dynamo_chunk_t.choice_index of a chat chunk that belongs to no choice (the usage chunk)

ChunkFields = tuple  # (json: bytes, text: bytes | None, token_ids: list[int] | None, finish_reason: int, choice: int)


def chat_chunks(item: dict) -> list[ChunkFields]:
    """The C chunks of an OpenAI chat.completion.chunk: one per choice, each JSON holding that choice
    alone, so a C chunk has one choice_index, that choice's content delta as text and that choice's
    own finish_reason (n > 1 streams interleave choices). A chunk of no choice (usage) is choice -1."""
    choices = item.get("choices")
    if not choices:
        return [(_encode(item), None, None, FINISH_NONE, NO_CHOICE)]
    if len(choices) == 1:
        return [_choice_fields(item, choices[0])]
    return [_choice_fields({**item, "choices": [choice]}, choice) for choice in choices]


def _choice_fields(item: dict, choice: dict) -> ChunkFields:
    content = choice["text"] if "text" in choice else (choice.get("delta") or {}).get("content")  # completion | chat
    text = content.encode() if isinstance(content, str) else None
    index = choice.get("index", 0)
    return (_encode(item), text, choice.get("token_ids"), finish_code(choice.get("finish_reason")),
            index if type(index) is int else 0)


def endpoint_chunk(item: Any) -> tuple:
    """A response of a generic endpoint: token_ids from its "token_ids" field, no text (the
    reference for what C reads from endpoint_array's elements: json, text, token_ids, finish_reason;
    its choice_index is always 0)."""
    if type(item) is dict:
        ids = item.get("token_ids")
        reason = item.get("finish_reason")
        return (_encode(item), None, ids if type(ids) is list else None,
                finish_code(reason) if reason is not None else FINISH_NONE)
    return _encode(item), None, None, FINISH_NONE


class ChunkBatch:
    """Chunks of one stream waiting to be handed to C in a single call (one per loop iteration):
    JSON and text bytes back to back, token ids back to back, META ints of metadata per chunk."""

    __slots__ = ("jsons", "texts", "meta", "ids")

    def __init__(self):
        self.jsons: list[bytes] = []
        self.texts: list[bytes] = []
        self.meta: list[int] = []   # json_len, text_len (-1: no text), num_token_ids, finish_reason, choice
        self.ids: list[int] = []

    def __len__(self) -> int:
        return len(self.jsons)

    def add(self, json: bytes, text: bytes | None, ids: list[int] | None, finish: int, choice: int = 0) -> None:
        self.jsons.append(json)
        if text is None:
            text_len = -1
        else:
            text_len = len(text)
            self.texts.append(text)
        if ids:
            self.ids.extend(ids)
            self.meta += (len(json), text_len, len(ids), finish, choice)
        else:
            self.meta += (len(json), text_len, 0, finish, choice)

    def fields(self):
        """The chunks as (json, text, token_ids, finish, choice) tuples (for test sinks)."""
        texts, ids = iter(self.texts), iter(self.ids)
        for i, json in enumerate(self.jsons):
            _, text_len, n_ids, finish, choice = self.meta[META * i: META * i + META]
            yield (json, None if text_len < 0 else next(texts), [next(ids) for _ in range(n_ids)] or None, finish,
                   choice)


def chat_batch(items: list) -> ChunkBatch:
    """The ChunkBatch of OpenAI chat.completion.chunk dicts (see chat_chunks)."""
    batch = ChunkBatch()
    add = batch.add
    for item in items:
        choices = item.get("choices")
        if choices and len(choices) == 1:  # the hot path: one token of one choice
            add(*_choice_fields(item, choices[0]))
        else:
            for fields in chat_chunks(item):
                add(*fields)
    return batch


# the terminal Responses events' DYNAMO_FINISH_* (include/dynamo_llm.h, dynamo_responses_create)
RESPONSE_FINISH = {"response.completed": FINISH_STOP, "response.incomplete": FINISH_LENGTH,
                   "response.failed": FINISH_ERROR}


def response_chunk(event: dict) -> ChunkFields:
    """The C chunk of one Responses stream event: its JSON, the delta of a response.output_text.delta as text,
    and a finish reason on the terminal event only (tool calls when a completed response's output holds a
    function call)."""
    kind = event.get("type")
    text = event["delta"].encode() if kind == "response.output_text.delta" else None
    finish = RESPONSE_FINISH.get(kind, FINISH_NONE)
    if finish == FINISH_STOP and any(item.get("type") == "function_call" for item in event["response"]["output"]):
        finish = FINISH_TOOL_CALLS
    return _encode(event), text, None, finish, 0


async def response_chunks(events: AsyncIterator[dict]) -> AsyncIterator[ChunkFields]:
    """response_chunk of each event as it comes: encoded at once, because an event holds the response's live
    output items, which the events after it change (as the HTTP route writes each event before the next);
    closing this closes `events`."""
    async with contextlib.aclosing(events) as stream:
        async for event in stream:
            yield response_chunk(event)


def fields_batch(chunks: list[ChunkFields]) -> ChunkBatch:
    """The ChunkBatch of chunks already made (response_chunks)."""
    batch = ChunkBatch()
    for fields in chunks:
        batch.add(*fields)
    return batch


def endpoint_array(items: list) -> bytes:
    """Generic endpoint responses as one compact JSON array: C splits it and reads each element's
    token_ids and finish_reason as endpoint_chunk does (capi/src/chunk_scan.c), so the hot path
    costs Python one encode per batch."""
    return _encode(items)
