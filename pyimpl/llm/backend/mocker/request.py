"""One request inside the mock engine: its state, and the outbox its reader takes outputs from.

The outbox is a deque with one waiting future rather than an asyncio.Queue, which does more work per item
(loop checks, getter/putter bookkeeping, a coroutine per get): every token of every mock request passes
through it, so it is the mock's hot path. A deque subclass, so len() and truth tests stay in C. One reader
and one writer on the same loop; unbounded (the scheduler pauses a request whose reader is MAX_UNREAD
outputs behind)."""
from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass, field
from typing import TypeVar

from pyimpl.llm.engine.outputs import RequestOutput

from .kv_cache import KvSequence
from .params import MockSamplingParams

MAX_UNREAD = 64     # outputs queued for a request's reader before its decoding waits (memory stays bounded)
T = TypeVar("T")


class Outbox(deque[T]):
    """`put` never blocks; the reader takes with `popleft` after awaiting `ready()` while the outbox is empty."""

    __slots__ = ("_waiter",)

    def __init__(self) -> None:
        super().__init__()
        self._waiter: asyncio.Future | None = None

    def put(self, item: T) -> None:
        self.append(item)
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)

    def ready(self) -> asyncio.Future:
        """A future done once an item is there (await it while the outbox is empty); a plain function, not a
        coroutine, so waiting costs one future and no extra frame."""
        waiter = self._waiter = asyncio.get_running_loop().create_future()
        if self:
            waiter.set_result(None)
        return waiter


@dataclass(eq=False)
class MockRequest:
    """A request from generate() to its end: what it echoes, its KV sequence, its progress and its outbox."""

    request_id: str
    params: MockSamplingParams
    echo: list[int]                      # what the output cycles through
    prompt_len: int
    max_new: int
    kv: KvSequence
    outbox: Outbox[RequestOutput] = field(default_factory=Outbox)
    generated: list[int] = field(default_factory=list)
    num_computed: int = 0
    running: bool = False                # admitted: holds KV and is in the running list
    paused: bool = False                 # its reader is MAX_UNREAD outputs behind: no decode until it reads
    done: bool = False
