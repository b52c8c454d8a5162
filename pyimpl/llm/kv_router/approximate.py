"""Approximate KV index (`--no-kv-events`): for workers that publish no KV events, the router assumes a prompt's
blocks stay cached on the worker it sent them to for `ttl_s` after the last request that used them (Dynamo's
ApproxKvIndexer, 120 s by default), and no more of them than the worker's cache holds (its published total blocks):
past that, the least recently used go first, deepest blocks before their prefixes, as an LRU prefix cache evicts."""
from __future__ import annotations

import time
from collections import OrderedDict
from typing import Callable

from .indexer import RadixIndexer

DEFAULT_TTL_S = 120.0


class ApproxIndexer(RadixIndexer):
    """A RadixIndexer fed by the router's own decisions; blocks expire `ttl_s` after their last use."""

    def __init__(self, block_size: int, ttl_s: float = DEFAULT_TTL_S, clock: Callable[[], float] = time.monotonic):
        super().__init__(block_size)
        if ttl_s <= 0:
            raise ValueError(f"ttl_s must be > 0, got {ttl_s}")
        self.ttl_s = ttl_s
        self.clock = clock
        # worker -> prefix id -> when it expires, least recently used first
        self._expiry: dict[int, OrderedDict[int, float]] = {}

    def record(self, worker_id: int, local_hashes: list[int], prefix_ids: list[int],
               capacity: int | None = None) -> None:
        """The router sent a prompt with these blocks to `worker_id`: assume it caches them from now on, keeping at
        most `capacity` blocks for it (None: no limit known)."""
        self.expire()
        self.store(worker_id, None, zip(prefix_ids, local_hashes))
        until = self.clock() + self.ttl_s
        order = self._expiry.setdefault(worker_id, OrderedDict())
        for prefix_id in reversed(prefix_ids):       # the prompt's start ends most recent: evicted last
            order[prefix_id] = until
            order.move_to_end(prefix_id)
        if capacity is not None:
            while len(order) > max(capacity, 0):
                victim, _ = order.popitem(last=False)
                self.remove(worker_id, (victim,))

    def expire(self) -> None:
        """Forget blocks whose TTL ran out."""
        now = self.clock()
        for worker_id, order in self._expiry.items():
            while order:
                prefix_id, until = next(iter(order.items()))
                if until > now:
                    break
                order.popitem(last=False)
                self.remove(worker_id, (prefix_id,))

    def find_matches_prefixes(self, ids: list[int]) -> dict[int, int]:
        self.expire()
        return super().find_matches_prefixes(ids)

    def remove_worker(self, worker_id: int) -> None:
        super().remove_worker(worker_id)
        self._expiry.pop(worker_id, None)
