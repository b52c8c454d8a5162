"""Paged KV block allocator: ref-counted fixed-size blocks, prefix caching by chained hashes, LRU eviction."""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable

from .block_hash import chain_block_hash, local_block_hash
from .kv_events import KvCacheCleared, KvCacheRemoved, KvCacheStored, KvEvent, KvEventBus, StoredBlock
from .sequence import Sequence


@dataclass
class Block:
    """One KV block; `block_hash` is set while it is registered in the prefix cache."""

    block_id: int
    ref_count: int = 0
    block_hash: int | None = None
    token_ids: tuple[int, ...] = ()


class BlockManager:
    """Hands out blocks to sequences; full computed blocks are cached by hash and reused until evicted."""

    def __init__(self, num_blocks: int, block_size: int, enable_prefix_caching: bool = True) -> None:
        self.block_size = block_size
        self.num_blocks = num_blocks
        self.enable_prefix_caching = enable_prefix_caching
        self.blocks = [Block(i) for i in range(num_blocks)]
        self.free_uncached: list[int] = list(range(num_blocks - 1, -1, -1))  # pop() gives low ids first
        self.free_cached: OrderedDict[int, None] = OrderedDict()  # LRU order: first is evicted first
        self.cached: dict[int, int] = {}  # sequence hash -> block id
        self.events = KvEventBus()
        self.query_tokens = 0
        self.hit_tokens = 0

    # ---- capacity
    @property
    def num_free_blocks(self) -> int:
        return len(self.free_uncached) + len(self.free_cached)

    @property
    def num_used_blocks(self) -> int:
        return self.num_blocks - self.num_free_blocks

    def blocks_needed(self, num_tokens: int) -> int:
        return -(-num_tokens // self.block_size)

    def lookup(self, seq: Sequence) -> list[int]:
        """Cached blocks holding `seq`'s leading full blocks (never its last token's block); changes nothing."""
        if not self.enable_prefix_caching:
            return []
        bs = self.block_size
        parent, hits = None, []
        for i in range((seq.num_tokens - 1) // bs):
            tokens = tuple(seq.token_ids[i * bs:(i + 1) * bs])
            parent = chain_block_hash(parent, local_block_hash(tokens))
            bid = self.cached.get(parent)
            if bid is None or self.blocks[bid].token_ids != tokens:
                break
            hits.append(bid)
        return hits

    def can_allocate(self, hits: list[int], num_tokens: int) -> bool:
        """Whether blocks for `num_tokens` fit when `hits` are reused: a hit on a block in use costs nothing."""
        idle_hits = sum(1 for bid in hits if self.blocks[bid].ref_count == 0)
        return self.num_free_blocks >= self.blocks_needed(num_tokens) - len(hits) + idle_hits

    def allocate(self, seq: Sequence, hits: list[int], num_tokens: int) -> None:
        """Give `seq` the `hits` plus fresh blocks up to `num_tokens` (after can_allocate); counts the cache query."""
        assert not seq.block_table
        for bid in hits:
            self._share(bid)
        seq.block_table = list(hits)
        for _ in range(self.blocks_needed(num_tokens) - len(hits)):
            seq.block_table.append(self._take_free())
        seq.num_hashed_blocks = len(hits)
        seq.last_block_hash = self.blocks[hits[-1]].block_hash if hits else None
        seq.num_computed_tokens = len(hits) * self.block_size
        self.query_tokens += seq.num_tokens
        self.hit_tokens += len(hits) * self.block_size

    def can_append(self, seq: Sequence, num_tokens: int) -> bool:
        """Whether `seq` can grow to `num_tokens` slots."""
        return self.blocks_needed(num_tokens) - len(seq.block_table) <= self.num_free_blocks

    def append_slots(self, seq: Sequence, num_tokens: int) -> None:
        """Grow `seq`'s block table to hold `num_tokens` (after can_append)."""
        while len(seq.block_table) < self.blocks_needed(num_tokens):
            seq.block_table.append(self._take_free())

    def fork(self, parent: Sequence, child: Sequence, num_blocks: int) -> None:
        """Let `child` share `parent`'s first `num_blocks` computed blocks (n > 1 choices of one prompt)."""
        assert not child.block_table and num_blocks * self.block_size <= parent.num_computed_tokens
        child.block_table = parent.block_table[:num_blocks]
        for bid in child.block_table:
            self._share(bid)
        child.num_computed_tokens = num_blocks * self.block_size
        child.num_hashed_blocks, child.last_block_hash = 0, None

    def free(self, seq: Sequence) -> None:
        """Release `seq`'s blocks; cached ones stay reusable until evicted (tail blocks evicted first)."""
        for bid in reversed(seq.block_table):
            block = self.blocks[bid]
            block.ref_count -= 1
            if block.ref_count == 0:
                if block.block_hash is not None:
                    self.free_cached[bid] = None
                else:
                    self.free_uncached.append(bid)
        seq.block_table = []
        seq.num_computed_tokens = 0
        seq.num_hashed_blocks = 0
        seq.last_block_hash = None

    def register_computed_blocks(self, seq: Sequence) -> None:
        """Enter `seq`'s newly completed full blocks (all KV computed) into the prefix cache; emit stored events."""
        if not self.enable_prefix_caching:
            return
        bs = self.block_size
        full = seq.num_computed_tokens // bs
        run: list[StoredBlock] = []
        run_parent = seq.last_block_hash
        for i in range(seq.num_hashed_blocks, full):
            tokens = tuple(seq.token_ids[i * bs:(i + 1) * bs])
            local = local_block_hash(tokens)
            h = chain_block_hash(seq.last_block_hash, local)
            if h in self.cached:  # the same content is cached in another block: keep ours private
                if run:
                    self._emit(KvCacheStored(self._event_id(), run_parent, run))
                    run = []
                run_parent = h
            else:
                block = self.blocks[seq.block_table[i]]
                block.block_hash, block.token_ids = h, tokens
                self.cached[h] = block.block_id
                run.append(StoredBlock(h, local, list(tokens)))
            seq.last_block_hash = h
            seq.num_hashed_blocks = i + 1
        if run:
            self._emit(KvCacheStored(self._event_id(), run_parent, run))

    def reset_prefix_cache(self) -> bool:
        """Forget every cached block (only when no block is in use); emits a cleared event."""
        if self.num_used_blocks:
            return False
        for bid in list(self.free_cached):
            self._uncache(self.blocks[bid])
            self.free_uncached.append(bid)
        self.free_cached.clear()
        self._emit(KvCacheCleared(self._event_id()))
        return True

    @property
    def prefix_cache_hit_rate(self) -> float:
        return self.hit_tokens / self.query_tokens if self.query_tokens else 0.0

    # ---- events
    def subscribe(self, callback: Callable[[KvEvent], None]) -> Callable[[], None]:
        """Call `callback(event)` for every KV event; returns a function that unsubscribes."""
        return self.events.subscribe(callback)

    def _emit(self, event: KvEvent) -> None:
        self.events.emit(event)

    def _event_id(self) -> int:
        return self.events.next_id()

    # ---- internals
    def _share(self, bid: int) -> None:
        block = self.blocks[bid]
        if block.ref_count == 0:
            del self.free_cached[bid]
        block.ref_count += 1

    def _take_free(self) -> int:
        if self.free_uncached:
            bid = self.free_uncached.pop()
        else:
            bid, _ = self.free_cached.popitem(last=False)
            h = self.blocks[bid].block_hash
            self._uncache(self.blocks[bid])
            self._emit(KvCacheRemoved(self._event_id(), [h]))
        self.blocks[bid].ref_count = 1
        return bid

    def _uncache(self, block: Block) -> None:
        if block.block_hash is not None and self.cached.get(block.block_hash) == block.block_id:
            del self.cached[block.block_hash]
        block.block_hash, block.token_ids = None, ()
