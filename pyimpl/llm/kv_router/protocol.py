"""What workers publish for KV-aware routing, on the runtime's event plane: the seam between publishers (a worker's
engine, the C KV-event API of a C/C++ engine, the mock engine) and the router.

Blocks are named twice, as in Dynamo: `tokens_hash` is the hash of the block's own tokens (block_hash.local_block_hash;
the router indexes prefixes by the chain of these), `block_hash` is the publisher's id for the block (the engine's
chained sequence hash, or a C engine's external block id), used by removal events and `parent_hash`.
"""
from __future__ import annotations

from typing import Literal

import msgspec

KV_EVENTS_TOPIC = "kv_events"  # subject: {namespace}.{component}.kv_events
LOAD_TOPIC = "kv_load"  # subject: {namespace}.{component}.kv_load
SNAPSHOT_ENDPOINT = "kv_snapshot"  # endpoint {namespace}.{component}.kv_snapshot answers one KvEventBatch


def subject(namespace: str, component: str, topic: str) -> str:
    """The event-plane subject of `topic` for a component's workers."""
    return f"{namespace}.{component}.{topic}"


class WireBlock(msgspec.Struct, array_like=True, frozen=True):
    """One stored block: the publisher's id for it and the hash of its own tokens."""

    block_hash: int
    tokens_hash: int


class WireKvEvent(msgspec.Struct, frozen=True):
    """stored: `blocks` follow `parent_hash` (None: the sequence's start); removed: `block_hashes`; cleared: all."""

    kind: Literal["stored", "removed", "cleared"]
    event_id: int
    parent_hash: int | None = None
    blocks: list[WireBlock] = []
    block_hashes: list[int] = []


class KvEventBatch(msgspec.Struct, frozen=True, omit_defaults=True):
    """Events of one worker instance, in the order they happened; a snapshot is one batch of stored events and
    `last_event_id`, the id of the last event its state includes (None: the publisher published none yet)."""

    worker_id: int
    block_size: int
    events: list[WireKvEvent]
    last_event_id: int | None = None


class LoadMetrics(msgspec.Struct, frozen=True):
    """A worker's load, published after its engine's steps (at most every 50 ms) and read by the router's cost.
    `last_kv_event_id`: the id of the last KV event the worker published before this message (None: none yet,
    or it publishes none); a router that has not seen that event lost some and re-syncs from a snapshot."""

    worker_id: int
    active_blocks: int
    total_blocks: int
    num_running: int
    num_waiting: int
    last_kv_event_id: int | None = None


class BlockLedger:
    """A publisher's blocks stored and not removed, with their parents, as of its last published event: what
    it answers on `kv_snapshot` (a worker's publisher and the C KV-event API both keep one)."""

    def __init__(self) -> None:
        self.blocks: dict[int, tuple[int | None, int]] = {}  # block_hash -> (parent_hash, tokens_hash)
        self.last_event_id: int | None = None                 # None: no event yet

    def apply(self, event: WireKvEvent) -> None:
        self.last_event_id = event.event_id
        if event.kind == "stored":
            parent = event.parent_hash
            for block in event.blocks:
                self.blocks[block.block_hash] = (parent, block.tokens_hash)
                parent = block.block_hash
        elif event.kind == "removed":
            for block_hash in event.block_hashes:
                self.blocks.pop(block_hash, None)
        else:
            self.blocks.clear()

    def snapshot(self, worker_id: int, block_size: int) -> KvEventBatch:
        """One stored event per block, parents before children (the order they were stored in), each with the
        ledger's last event id (a router applies only live events newer than that)."""
        last = self.last_event_id
        events = [WireKvEvent("stored", last or 0, parent, [WireBlock(block_hash, hashed)])
                  for block_hash, (parent, hashed) in self.blocks.items()]
        return KvEventBatch(worker_id, block_size, events, last)


encode = msgspec.msgpack.Encoder().encode
decode_batch = msgspec.msgpack.Decoder(KvEventBatch).decode
decode_load = msgspec.msgpack.Decoder(LoadMetrics).decode
