"""The mock engine's paged KV cache, kept as Dynamo's mocker does: by block hash, with no tensors.

Full computed blocks are named by their chained sequence hash (engine/block_hash.py, the torch engine's
and the router's hashes) and shared by reference count; a block no request uses stays cached, evicted
least recently used first when its room is needed. Blocks not yet full or not yet computed are private to
their request. Stored / removed / cleared events are the torch engine's KvEvent types."""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

from pyimpl.llm.engine.block_hash import chain_block_hash, local_block_hash
from pyimpl.llm.engine.kv_events import (KvCacheCleared, KvCacheRemoved, KvCacheStored, KvEventBus,
                                         StoredBlock)


@dataclass(eq=False)
class KvSequence:
    """One request's tokens and the blocks it holds: `held` (shared, by hash) then `private` more."""

    tokens: list[int]
    local: list[int] = field(default_factory=list)     # tokens-only hash of each full block hashed so far
    chained: list[int] = field(default_factory=list)   # sequence hash of the same blocks
    held: list[int] = field(default_factory=list)      # sequence hashes of the registered blocks it holds
    private: int = 0

    def hashes(self, block_size: int, count: int) -> list[int]:
        """Sequence hashes of the first `count` full blocks (computed once, as tokens grow)."""
        while len(self.chained) < count:
            i = len(self.chained)
            local = local_block_hash(self.tokens[i * block_size:(i + 1) * block_size])
            self.local.append(local)
            self.chained.append(chain_block_hash(self.chained[-1] if self.chained else None, local))
        return self.chained[:count]


class MockKvCache:
    """Capacity in blocks; `match` / `can_admit` / `admit` / `grow` / `register` / `release` per request."""

    def __init__(self, num_blocks: int, block_size: int) -> None:
        if num_blocks < 1 or block_size < 1:
            raise ValueError("num_blocks and block_size must be positive")
        self.num_blocks, self.block_size = num_blocks, block_size
        self.active: dict[int, int] = {}                    # hash -> requests holding it
        self.inactive: OrderedDict[int, None] = OrderedDict()  # cached, unused; first is evicted first
        self.private = 0
        self.events = KvEventBus()
        self.query_tokens = 0
        self.hit_tokens = 0

    # ---- figures
    @property
    def free(self) -> int:
        return self.num_blocks - len(self.active) - len(self.inactive) - self.private

    @property
    def used(self) -> int:
        """Blocks requests hold (cached idle blocks count as free, as in the torch engine's stats)."""
        return len(self.active) + self.private

    def blocks_needed(self, num_tokens: int) -> int:
        return -(-num_tokens // self.block_size)

    # ---- per request
    def match(self, seq: KvSequence) -> list[int]:
        """Hashes of `seq`'s leading cached full blocks, never the block of its last token (it is computed)."""
        hits = []
        for h in seq.hashes(self.block_size, (len(seq.tokens) - 1) // self.block_size):
            if h not in self.active and h not in self.inactive:
                break
            hits.append(h)
        return hits

    def can_admit(self, hits: list[int], num_tokens: int) -> bool:
        idle_hits = sum(1 for h in hits if h in self.inactive)
        return self.free + len(self.inactive) - idle_hits >= self.blocks_needed(num_tokens) - len(hits)

    def admit(self, seq: KvSequence, hits: list[int], num_tokens: int) -> None:
        """Hold `hits` and private blocks up to `num_tokens` (after can_admit); counts the cache query."""
        for h in hits:
            self._hold(h)
        seq.held = list(hits)
        need = self.blocks_needed(num_tokens) - len(hits)
        self._reserve(need)
        seq.private = need
        self.private += need
        self.query_tokens += len(seq.tokens)
        self.hit_tokens += len(hits) * self.block_size

    def grow(self, seq: KvSequence, num_tokens: int) -> bool:
        """Room for `seq` to reach `num_tokens`; False (nothing changed) when the cache is full."""
        need = self.blocks_needed(num_tokens) - len(seq.held) - seq.private
        if need <= 0:
            return True
        if self.free + len(self.inactive) < need:
            return False
        self._reserve(need)
        seq.private += need
        self.private += need
        return True

    def register(self, seq: KvSequence, num_computed: int) -> None:
        """Share `seq`'s blocks completed within its first `num_computed` tokens; emits one stored event
        per run of blocks that were not cached yet."""
        full = num_computed // self.block_size
        if full <= len(seq.held):
            return
        hashes = seq.hashes(self.block_size, full)
        run: list[StoredBlock] = []
        run_parent = seq.held[-1] if seq.held else None
        for i in range(len(seq.held), full):
            h = hashes[i]
            seq.private -= 1
            self.private -= 1
            if h in self.active or h in self.inactive:      # computed elsewhere meanwhile: share that one
                self._hold(h)
                if run:
                    self.events.emit(KvCacheStored(self.events.next_id(), run_parent, run))
                    run = []
                run_parent = h
            else:
                self.active[h] = 1
                bs = self.block_size
                run.append(StoredBlock(h, seq.local[i], seq.tokens[i * bs:(i + 1) * bs]))
            seq.held.append(h)
        if run:
            self.events.emit(KvCacheStored(self.events.next_id(), run_parent, run))

    def release(self, seq: KvSequence) -> None:
        """Drop `seq`'s blocks; shared ones stay cached (its tail blocks are evicted first)."""
        for h in reversed(seq.held):
            count = self.active[h] - 1
            if count:
                self.active[h] = count
            else:
                del self.active[h]
                self.inactive[h] = None
        self.private -= seq.private
        seq.held, seq.private = [], 0

    def reset(self) -> bool:
        """Forget every idle cached block (only when no request holds one); emits a cleared event."""
        if self.active or self.private:
            return False
        self.inactive.clear()
        self.events.emit(KvCacheCleared(self.events.next_id()))
        return True

    # ---- internals
    def _hold(self, h: int) -> None:
        if h in self.inactive:
            del self.inactive[h]
            self.active[h] = 1
        else:
            self.active[h] += 1

    def _reserve(self, count: int) -> None:
        """Make `count` blocks free, evicting idle cached blocks (one removed event for all of them)."""
        free = self.free
        if free >= count:
            return
        evicted = []
        while free < count and self.inactive:
            h, _ = self.inactive.popitem(last=False)
            evicted.append(h)
            free += 1
        if evicted:
            self.events.emit(KvCacheRemoved(self.events.next_id(), evicted))
        assert free >= count, "reserve past capacity (callers check can_admit / grow)"
