"""Block hashes of a prompt as the router indexes them: the same XXH3-64 (seed 1337) over little-endian uint32
token ids that workers publish as `tokens_hash`, computed for a whole prompt with one conversion (the hot path)."""
from __future__ import annotations

import struct
from functools import lru_cache
from itertools import islice, repeat

import numpy as np
import xxhash

from pyimpl.llm.engine.block_hash import HASH_SEED

_hash = xxhash.xxh3_64_intdigest


_slices: dict[int, list[slice]] = {}      # bytes per block -> the blocks' slices, grown as prompts need


def _block_slices(step: int, count: int) -> list[slice]:
    table = _slices.get(step)
    if table is None or len(table) < count:
        table = _slices[step] = [slice(i * step, (i + 1) * step) for i in range(max(count, 2 * len(table or ())))]
    return table


@lru_cache(maxsize=256)
def _packer(num_tokens: int) -> struct.Struct:
    return struct.Struct(f"<{num_tokens}I")


def tokens_hashes(token_ids, block_size: int) -> list[int]:
    """The tokens-only hash of every full block of `token_ids` (a trailing partial block is not hashed)."""
    count = len(token_ids) // block_size
    step = 4 * block_size
    try:      # struct packs a list ~1.7x faster than array("I", ...) (most of the hashing's time for long prompts)
        raw = _packer(count * block_size).pack(*(token_ids if len(token_ids) == count * block_size
                                                 else token_ids[:count * block_size]))
    except struct.error:              # an id outside uint32: the same error as before
        raise OverflowError("token id out of the uint32 range") from None
    # all loops in C (map over cached slice objects, positional seed): routing's hot path
    blocks = map(raw.__getitem__, islice(_block_slices(step, count), count))
    return list(map(_hash, blocks, repeat(HASH_SEED, count)))


_P = np.uint64(0x9E3779B97F4A7C15)             # odd, so invertible modulo 2**64
_P_INV = np.uint64(pow(int(_P), -1, 1 << 64))
_P_INT, _MASK64 = int(_P), (1 << 64) - 1
_powers: list[np.ndarray] = [np.ones(1, np.uint64), np.ones(1, np.uint64)]   # P**i, P**-i for i < len


def _power_tables(n: int) -> tuple[np.ndarray, np.ndarray]:
    if len(_powers[0]) < n:
        size = max(n, 2 * len(_powers[0]))
        with np.errstate(over="ignore"):
            _powers[0] = np.cumprod(np.full(size, _P, np.uint64)) * _P_INV          # P**0 .. P**(size-1)
            _powers[1] = np.cumprod(np.full(size, _P_INV, np.uint64)) * _P
    return _powers[0][:n], _powers[1][:n]


def next_prefix_id(parent_prefix_id: int, local_hash: int) -> int:
    """The prefix id of a block from its parent's (0 before the first block): prefix_ids' recurrence, in Python."""
    return (parent_prefix_id * _P_INT + local_hash) & _MASK64


def prefix_ids(local_hashes: list[int]) -> list[int]:
    """A router-internal id per prefix: equal ids mean equal prefixes (up to 64-bit collisions). A polynomial hash of
    the blocks' tokens hashes modulo 2**64, id_i = sum_j<=i h_j P**(i-j), computed as P**i x cumsum(h_j P**-j) in
    numpy: it never leaves the router, and costs a fifth of a Python loop over the blocks."""
    if not local_hashes:
        return []
    up, down = _power_tables(len(local_hashes))
    with np.errstate(over="ignore"):
        return (np.cumsum(np.array(local_hashes, np.uint64) * down) * up).tolist()
