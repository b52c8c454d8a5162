"""KV events mirror the prefix cache exactly, and block hashes follow the router's chained XXH3 formula."""
from __future__ import annotations

import struct

import numpy as np
import xxhash

from pyimpl.llm.engine import Engine, KvCacheCleared, KvCacheRemoved, KvCacheStored, SamplingParams

from engine_helpers import make_prompts, run_staggered


def reference_hashes(tokens: list[int], block_size: int) -> list[int]:
    """SERVING_FACTS.md: seq[0] = local[0]; seq[i] = XXH3(seed 1337, le(seq[i-1]) ++ le(local[i]))."""
    out: list[int] = []
    for start in range(0, len(tokens) - block_size + 1, block_size):
        local = xxhash.xxh3_64_intdigest(np.asarray(tokens[start:start + block_size], "<u4").tobytes(), seed=1337)
        out.append(local if not out else xxhash.xxh3_64_intdigest(struct.pack("<QQ", out[-1], local), seed=1337))
    return out


class EventMirror:
    """Rebuilds the set of cached block hashes from events alone, checking the events' own consistency."""

    def __init__(self) -> None:
        self.cached: dict[int, list[int]] = {}
        self.last_id = 0
        self.stored: list[KvCacheStored] = []
        self.removed = 0

    def __call__(self, event) -> None:
        assert event.event_id > self.last_id
        self.last_id = event.event_id
        if isinstance(event, KvCacheStored):
            assert event.parent_hash is None or event.parent_hash in self.cached or event.parent_hash in {
                h for e in self.stored for h in [b.block_hash for b in e.blocks]}
            for block in event.blocks:
                assert block.block_hash not in self.cached
                self.cached[block.block_hash] = block.token_ids
            self.stored.append(event)
        elif isinstance(event, KvCacheRemoved):
            for h in event.block_hashes:
                del self.cached[h]
            self.removed += 1
        else:
            assert isinstance(event, KvCacheCleared)
            self.cached.clear()


def test_events_match_cached_blocks_and_hashes(llama_dir):
    bs = 4
    engine = Engine.from_pretrained(str(llama_dir), dtype="float32", block_size=bs, num_kv_blocks=40, max_model_len=160)
    mirror = EventMirror()
    unsubscribe = engine.subscribe_kv_events(mirror)
    shared = make_prompts((12,), seed=7)[0]
    prompts = [shared + t for t in make_prompts((5, 0, 13, 9, 22, 3), seed=8)] + make_prompts((30, 18), seed=9)
    params = SamplingParams(temperature=0.0, max_tokens=12, ignore_eos=True)
    got = run_staggered(engine, prompts, params)
    bm = engine.block_manager
    assert mirror.removed > 0  # the small pool forced evictions
    assert set(mirror.cached) == set(bm.cached)
    for h, bid in bm.cached.items():
        assert list(bm.blocks[bid].token_ids) == mirror.cached[h]
    # Every stored hash is the reference chained hash of some request's tokens (prompt + generated, KV computed).
    valid = set()
    for i, prompt in enumerate(prompts):
        tokens = prompt + got[f"r{i}"]
        valid.update(reference_hashes(tokens[:-1], bs))
    stored = [b for e in mirror.stored for b in e.blocks]
    assert stored and all(b.block_hash in valid for b in stored)
    for e in mirror.stored:  # blocks of one event form a chain from parent_hash
        parent = e.parent_hash
        for b in e.blocks:
            local = xxhash.xxh3_64_intdigest(np.asarray(b.token_ids, "<u4").tobytes(), seed=1337)
            assert b.tokens_hash == local
            expected = local if parent is None else xxhash.xxh3_64_intdigest(struct.pack("<QQ", parent, local),
                                                                             seed=1337)
            assert b.block_hash == expected
            parent = b.block_hash
    assert engine.reset_prefix_cache()
    assert mirror.cached == {} and bm.cached == {}
    unsubscribe()
    engine.generate_batch([prompts[0]], params)
    assert mirror.cached == {}  # unsubscribed: no more events


def test_cache_hit_reuses_blocks_without_new_stored_events(qwen2_dir):
    engine = Engine.from_pretrained(str(qwen2_dir), dtype="float32", block_size=4)
    mirror = EventMirror()
    engine.subscribe_kv_events(mirror)
    prompt = make_prompts((21,), seed=10)[0]
    params = SamplingParams(temperature=0.0, max_tokens=1)
    engine.generate_batch([prompt], params)
    first = [b.block_hash for e in mirror.stored for b in e.blocks]
    assert first == reference_hashes(prompt, 4)
    engine.generate_batch([prompt], params)
    assert [b.block_hash for e in mirror.stored for b in e.blocks] == first  # all hits: nothing new stored
    assert engine.stats().prefix_cache_hits == 20
