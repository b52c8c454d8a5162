"""Which worker caches which prefix: a radix tree over the chain of blocks' `tokens_hash`, one worker set per node.

A node stands for one prefix (the path of tokens-only hashes from the root), so two workers that cached the same
tokens share nodes whatever ids they gave their blocks; each worker's own block ids (`block_hash`, used by its
removal events and `parent_hash`) map to its nodes. `find_matches` walks a prompt's blocks from the root and counts,
per worker, the blocks of the prompt's start it holds without a gap.
"""
from __future__ import annotations

import logging
from bisect import bisect_left
from itertools import accumulate, repeat
from operator import and_
from typing import Iterable

from .hashing import next_prefix_id, prefix_ids, tokens_hashes
from .protocol import KvEventBatch, WireKvEvent

log = logging.getLogger(__name__)


class _Node:
    __slots__ = ("children", "workers", "parent", "key", "prefix_id")

    def __init__(self, parent: "_Node | None", key: int, prefix_id: int):
        self.children: dict[int, _Node] = {}
        self.workers: dict[int, int] = {}     # worker -> how many of its block ids name this node
        self.parent = parent
        self.key = key
        self.prefix_id = prefix_id      # hashing.prefix_ids of the path from the root


class RadixIndexer:
    """The prefix index of every worker's cached blocks, fed by KV events (or an approximation of them)."""

    def __init__(self, block_size: int):
        if block_size <= 0:
            raise ValueError(f"block_size must be > 0, got {block_size}")
        self.block_size = block_size
        self._root = _Node(None, 0, 0)
        self._blocks: dict[int, dict[int, _Node]] = {}   # worker -> its block id -> node
        # The same holdings flat, for queries whose loops all run in C: prefix id -> bit mask of the workers
        # holding that node, one bit per worker (bits of workers that left are reused).
        self._masks: dict[int, int] = {}
        self._bits: dict[int, int] = {}
        self._free_bits: list[int] = []

    # ---- events ---------------------------------------------------------------------------
    def apply(self, batch: KvEventBatch) -> bool:
        """Apply a worker's batch in order; False when a stored event's parent is unknown (events were missed:
        the caller should re-sync that worker from a snapshot). A batch of another block size is refused."""
        if batch.block_size != self.block_size:
            raise ValueError(f"worker {batch.worker_id:x} publishes blocks of {batch.block_size} tokens, the router "
                             f"uses {self.block_size} (set --kv-cache-block-size to match)")
        complete = True
        for event in batch.events:
            complete = self.apply_event(batch.worker_id, event) and complete
        return complete

    def apply_event(self, worker_id: int, event: WireKvEvent) -> bool:
        """Apply one event of `worker_id`; False when a stored event's parent block is not indexed."""
        if event.kind == "stored":
            return self.store(worker_id, event.parent_hash, ((b.block_hash, b.tokens_hash) for b in event.blocks))
        if event.kind == "removed":
            self.remove(worker_id, event.block_hashes)
        else:
            self.clear(worker_id)
        return True

    def store(self, worker_id: int, parent_hash: int | None, blocks: Iterable[tuple[int, int]]) -> bool:
        """Index `blocks` ((block id, tokens hash) pairs, in sequence order) after the worker's block
        `parent_hash` (None: from the sequence's start). False, indexing nothing, when the parent is unknown."""
        own = self._blocks.get(worker_id)
        if own is None:
            own = self._blocks[worker_id] = {}
            self._bits[worker_id] = self._free_bits.pop() if self._free_bits else 1 << len(self._bits)
        bit, masks = self._bits[worker_id], self._masks
        if parent_hash is None:
            node = self._root
        else:
            node = own.get(parent_hash)
            if node is None:
                return False
        for block_hash, tokens_hash in blocks:
            child = node.children.get(tokens_hash)
            if child is None:
                child = node.children[tokens_hash] = _Node(node, tokens_hash,
                                                           next_prefix_id(node.prefix_id, tokens_hash))
            old = own.get(block_hash)
            if old is not child:
                if old is not None:     # the worker reused an id for other tokens
                    self._drop(worker_id, old)
                # a C engine may hold the same tokens in two blocks of its own: the node counts its ids
                child.workers[worker_id] = child.workers.get(worker_id, 0) + 1
                masks[child.prefix_id] = masks.get(child.prefix_id, 0) | bit
                own[block_hash] = child
            node = child
        return True

    def remove(self, worker_id: int, block_hashes: Iterable[int]) -> None:
        """Forget blocks of `worker_id` (unknown ids are ignored)."""
        own = self._blocks.get(worker_id)
        if own is None:
            return
        for block_hash in block_hashes:
            node = own.pop(block_hash, None)
            if node is not None:
                self._drop(worker_id, node)

    def clear(self, worker_id: int) -> None:
        """Forget every block of `worker_id`, keeping it known (its cache was dropped)."""
        own = self._blocks.get(worker_id)
        if own:
            for node in own.values():
                self._drop(worker_id, node)
            own.clear()

    def remove_worker(self, worker_id: int) -> None:
        """Forget `worker_id` entirely (it left discovery)."""
        self.clear(worker_id)
        if self._blocks.pop(worker_id, None) is not None:
            self._free_bits.append(self._bits.pop(worker_id))

    def _drop(self, worker_id: int, node: _Node) -> None:
        count = node.workers.pop(worker_id, 0) - 1
        if count > 0:                   # another block id of the worker still names this node
            node.workers[worker_id] = count
            return
        left = self._masks.get(node.prefix_id, 0) & ~self._bits[worker_id]
        if left:
            self._masks[node.prefix_id] = left
        else:
            self._masks.pop(node.prefix_id, None)
        while node.parent is not None and not node.workers and not node.children:
            del node.parent.children[node.key]
            node = node.parent

    # ---- queries --------------------------------------------------------------------------
    def find_matches(self, token_ids) -> dict[int, int]:
        """Per worker, how many of the prompt's first blocks it holds (workers holding none are left out)."""
        return self.find_matches_hashes(tokens_hashes(token_ids, self.block_size))

    def find_matches_hashes(self, local_hashes: list[int]) -> dict[int, int]:
        """`find_matches` for a prompt already hashed with `tokens_hashes`."""
        return self.find_matches_prefixes(prefix_ids(local_hashes))

    def find_matches_prefixes(self, ids: list[int]) -> dict[int, int]:
        """`find_matches` for a prompt's `hashing.prefix_ids` (what the router computes anyway): the running AND
        of the blocks' worker masks says who holds the prompt's start without a gap, and a binary search per
        such worker finds where its run ends."""
        held = list(accumulate(map(self._masks.get, ids, repeat(0, len(ids))), and_))
        if not held or not held[0]:
            return {}
        first = held[0]
        return {worker: bisect_left(held, True, key=lambda mask, bit=bit: not mask & bit)
                for worker, bit in self._bits.items() if first & bit}

    def worker_ids(self) -> list[int]:
        """Workers the index has heard of (with or without blocks)."""
        return list(self._blocks)

    def num_blocks(self, worker_id: int) -> int:
        """How many blocks of `worker_id` are indexed."""
        return len(self._blocks.get(worker_id, ()))

    def block_ids(self, worker_id: int) -> list[int]:
        """The indexed block ids of `worker_id`."""
        return list(self._blocks.get(worker_id, ()))
