"""KV cache events (stored / removed / cleared) that a KV-aware router consumes."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable

log = logging.getLogger(__name__)


@dataclass
class StoredBlock:
    """One block entering the prefix cache: its sequence hash, local (tokens-only) hash and tokens."""

    block_hash: int
    tokens_hash: int
    token_ids: list[int]


@dataclass
class KvCacheStored:
    """A chain of consecutive blocks became reusable; `parent_hash` is the block before the first (None: start)."""

    event_id: int
    parent_hash: int | None
    blocks: list[StoredBlock]


@dataclass
class KvCacheRemoved:
    """Blocks left the prefix cache (evicted for reuse)."""

    event_id: int
    block_hashes: list[int]


@dataclass
class KvCacheCleared:
    """The whole prefix cache was dropped."""

    event_id: int


KvEvent = KvCacheStored | KvCacheRemoved | KvCacheCleared


class KvEventBus:
    """A KV cache's event subscribers and its event ids (1, 2, ...): the torch engine's and the mock's."""

    def __init__(self) -> None:
        self.subscribers: list[Callable[[KvEvent], None]] = []
        self.last_event_id = 0

    def subscribe(self, callback: Callable[[KvEvent], None]) -> Callable[[], None]:
        """Call `callback(event)` for every KV event; returns a function that unsubscribes."""
        self.subscribers.append(callback)
        return lambda: self.subscribers.remove(callback) if callback in self.subscribers else None

    def next_id(self) -> int:
        self.last_event_id += 1
        return self.last_event_id

    def emit(self, event: KvEvent) -> None:
        for callback in list(self.subscribers):
            try:
                callback(event)
            except Exception:  # a broken subscriber must not fail the step
                log.exception("KV event subscriber %r failed", callback)
