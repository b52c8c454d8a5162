"""Chained KV block hashes shared with the KV router: XXH3-64 (seed 1337) over little-endian uint32 token ids."""
from __future__ import annotations

import struct
from array import array
import sys

import xxhash

HASH_SEED = 1337
_LITTLE = sys.byteorder == "little"


def local_block_hash(token_ids) -> int:
    """Hash of one full block's tokens alone."""
    data = array("I", token_ids)
    if not _LITTLE:
        data.byteswap()
    return xxhash.xxh3_64_intdigest(data.tobytes(), seed=HASH_SEED)


def chain_block_hash(parent_hash: int | None, local_hash: int) -> int:
    """Sequence hash of a block: its local hash for the first block, else hashed with its parent's."""
    if parent_hash is None:
        return local_hash
    return xxhash.xxh3_64_intdigest(struct.pack("<QQ", parent_hash, local_hash), seed=HASH_SEED)


def sequence_block_hashes(token_ids: list[int], block_size: int) -> list[int]:
    """Sequence hashes of every full block of `token_ids` (a trailing partial block is not hashed)."""
    hashes: list[int] = []
    parent = None
    for start in range(0, len(token_ids) - block_size + 1, block_size):
        parent = chain_block_hash(parent, local_block_hash(token_ids[start:start + block_size]))
        hashes.append(parent)
    return hashes
