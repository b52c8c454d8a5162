"""KV cache events (stored / removed / cleared) that a KV-aware router consumes."""
from __future__ import annotations

from dataclasses import dataclass


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
