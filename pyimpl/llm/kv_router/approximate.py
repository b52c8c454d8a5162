"""Approximate KV index (`--no-kv-events`): for workers that publish no KV events, the router assumes a prompt's
blocks stay cached on the worker it sent them to for `ttl_s` after the last request that used them (Dynamo's
ApproxKvIndexer, 120 s by default)."""
from __future__ import annotations

import heapq
import time
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
        self._expiry: dict[tuple[int, int], float] = {}    # (worker, prefix id) -> when it expires
        self._heap: list[tuple[float, int, int]] = []

    def record(self, worker_id: int, local_hashes: list[int], prefix_ids: list[int]) -> None:
        """The router sent a prompt with these blocks to `worker_id`: assume it caches them from now on."""
        self.expire()
        self.store(worker_id, None, zip(prefix_ids, local_hashes))
        until = self.clock() + self.ttl_s
        for seq in prefix_ids:
            self._expiry[(worker_id, seq)] = until
            heapq.heappush(self._heap, (until, worker_id, seq))

    def expire(self) -> None:
        """Forget blocks whose TTL ran out."""
        now = self.clock()
        heap = self._heap
        while heap and heap[0][0] <= now:
            until, worker, seq = heapq.heappop(heap)
            if self._expiry.get((worker, seq)) == until:
                del self._expiry[(worker, seq)]
                self.remove(worker, (seq,))

    def find_matches_hashes(self, local_hashes: list[int]) -> dict[int, int]:
        self.expire()
        return super().find_matches_hashes(local_hashes)

    def remove_worker(self, worker_id: int) -> None:
        super().remove_worker(worker_id)
        for key in [k for k in self._expiry if k[0] == worker_id]:
            del self._expiry[key]
