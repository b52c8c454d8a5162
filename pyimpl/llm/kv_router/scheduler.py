"""Dynamo's routing cost: `overlap_weight x prefill_blocks + decode_blocks` per worker; temperature 0 picks the
cheapest (ties: the worker with the fewest indexed blocks, then at random), > 0 samples a softmax over costs.

prefill_blocks counts the tokens the worker would still have to prefill (this prompt past its cached prefix, plus
the prefills the router already sent it), decode_blocks the KV blocks it would hold (its active requests' blocks,
or the load it published if higher, plus this prompt's). The router tracks its own requests in ActiveSequences.
"""
from __future__ import annotations

import math
import random
from bisect import bisect_left
from collections import Counter, deque
from itertools import repeat
from operator import sub
from dataclasses import dataclass
from typing import Mapping, Sequence

from .protocol import LoadMetrics


@dataclass
class _Active:
    worker_id: int
    hashes: list[int]        # prefix ids (hashing.prefix_ids) of the prompt's full blocks
    extra_blocks: int        # blocks past the full ones (a partial last block)
    prefill_tokens: int


class ActiveSequences:
    """The requests the router sent to each worker and has not seen finish: the distinct KV blocks they hold (a
    prefix shared by several requests on a worker counts once, by prefix id) and their pending prefill."""

    def __init__(self) -> None:
        self._requests: dict[str, _Active] = {}
        self._held: dict[int, Counter] = {}     # worker -> prefix id -> active requests holding it
        self._extra: dict[int, int] = {}
        self.prefill_tokens: dict[int, int] = {}

    def add(self, request_id: str, worker_id: int, hashes: list[int], request_blocks: int,
            prefill_tokens: int) -> None:
        """Count a routed request on its worker (a request id already present is replaced)."""
        self.free(request_id)
        active = _Active(worker_id, hashes, request_blocks - len(hashes), prefill_tokens)
        self._requests[request_id] = active
        held = self._held.get(worker_id)
        if held is None:
            held = self._held[worker_id] = Counter()
        held.update(hashes)         # Counter's C loop: this runs on every routing decision
        self._extra[worker_id] = self._extra.get(worker_id, 0) + active.extra_blocks
        self.prefill_tokens[worker_id] = self.prefill_tokens.get(worker_id, 0) + prefill_tokens

    def prefill_done(self, request_id: str) -> None:
        """The request's first token arrived: its prefill no longer weighs on its worker."""
        active = self._requests.get(request_id)
        if active is not None and active.prefill_tokens:
            self.prefill_tokens[active.worker_id] -= active.prefill_tokens
            active.prefill_tokens = 0

    def free(self, request_id: str) -> None:
        """The request ended (finished, failed or cancelled)."""
        active = self._requests.pop(request_id, None)
        if active is None:
            return
        worker = active.worker_id
        held = self._held.get(worker)
        if held is not None and active.hashes:
            # A request holds a whole chain of prefixes, so counts never grow along a chain and the prefixes this
            # request was the last to hold are the chain's tail: all loops in C (this runs once per request).
            left = list(map(sub, map(held.__getitem__, active.hashes), repeat(1)))
            dict.update(held, zip(active.hashes, left))
            first_gone = bisect_left(left, True, key=(0).__ge__)
            deque(map(held.pop, active.hashes[first_gone:]), maxlen=0)
        self._extra[worker] = self._extra.get(worker, 0) - active.extra_blocks
        self.prefill_tokens[worker] = self.prefill_tokens.get(worker, 0) - active.prefill_tokens

    def blocks(self, worker_id: int) -> int:
        """Distinct KV blocks the worker's active requests hold."""
        return len(self._held.get(worker_id, ())) + self._extra.get(worker_id, 0)

    def shared_prefix(self, worker_id: int, hashes: list[int]) -> int:
        """How many of a prompt's first blocks the worker's active requests already hold (a prefix id implies
        its whole prefix, so this is a binary search)."""
        held = self._held.get(worker_id)
        if not held or not hashes or hashes[0] not in held:
            return 0
        low, high = 1, len(hashes)          # hashes[:low] held; find the largest such low
        while low < high:
            mid = (low + high + 1) // 2
            if hashes[mid - 1] in held:
                low = mid
            else:
                high = mid - 1
        return low

    def remove_worker(self, worker_id: int) -> None:
        """Forget a worker that left, and the requests it had."""
        for request_id in [r for r, a in self._requests.items() if a.worker_id == worker_id]:
            del self._requests[request_id]
        self._held.pop(worker_id, None)
        self._extra.pop(worker_id, None)
        self.prefill_tokens.pop(worker_id, None)

    def __len__(self) -> int:
        return len(self._requests)


def worker_costs(worker_ids: Sequence[int], overlaps: Mapping[int, int], hashes: list[int], isl_tokens: int,
                 block_size: int, active: ActiveSequences, loads: Mapping[int, LoadMetrics],
                 overlap_weight: float) -> dict[int, float]:
    """The cost of sending a prompt of `isl_tokens` (its full blocks' prefix ids `hashes`) to each worker; lower is better.
    A prefix that requests in flight on the worker hold counts as cached there (its KV is being computed)."""
    request_blocks = -(-isl_tokens // block_size)
    costs = {}
    for worker in worker_ids:
        shared = active.shared_prefix(worker, hashes)
        cached = max(overlaps.get(worker, 0), shared)
        prefill_blocks = (active.prefill_tokens.get(worker, 0) + max(0, isl_tokens - cached * block_size)) / block_size
        load = loads.get(worker)
        held = max(active.blocks(worker), load.active_blocks if load is not None else 0)
        costs[worker] = overlap_weight * prefill_blocks + held + request_blocks - shared
    return costs


def select_worker(costs: Mapping[int, float], temperature: float, tree_sizes: Mapping[int, int],
                  rng: random.Random) -> int:
    """The cheapest worker (temperature 0), or one sampled from softmax(-cost / (temperature x cost range))."""
    if not costs:
        raise ValueError("no worker to choose from")
    if temperature <= 0:
        best = min(costs.values())
        tied = [w for w, c in costs.items() if c == best]
        if len(tied) > 1:
            fewest = min(tree_sizes.get(w, 0) for w in tied)
            tied = [w for w in tied if tree_sizes.get(w, 0) == fewest]
        return tied[0] if len(tied) == 1 else rng.choice(tied)
    low, high = min(costs.values()), max(costs.values())
    workers = list(costs)
    if high == low:
        return rng.choice(workers)
    scale = 1.0 / ((high - low) * temperature)
    weights = [math.exp(-(costs[w] - low) * scale) for w in workers]
    return rng.choices(workers, weights)[0]
