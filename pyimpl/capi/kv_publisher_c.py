"""The Python side of Dynamo's C KV-event API (capi/src/kv_events_c.c): the events a C/C++ engine queued,
hashed as the router indexes them and published as KvEventBatch on the event plane, in order, batched.

A block is indexed by `tokens_hash` = engine/block_hash.local_block_hash of its own tokens (a LoRA adapter's
blocks: the same hash over the adapter's name and the tokens, so they never match the base model's) and named
by the engine's own id (`block_hash`), as in Dynamo's C bindings.
"""
from __future__ import annotations

import asyncio
import logging
import struct
from array import array
from dataclasses import dataclass
from typing import Any, AsyncIterator

import msgspec
import xxhash

from pyimpl.llm.engine.block_hash import HASH_SEED, local_block_hash
from pyimpl.llm.kv_router.protocol import (KV_EVENTS_TOPIC, SNAPSHOT_ENDPOINT, BlockLedger, KvEventBatch,
                                           WireBlock, WireKvEvent, encode, subject)

log = logging.getLogger("pyimpl.capi.kv_events")

STORED_HEADER = struct.Struct("=6Q")   # event_id, kept, has_parent, parent, lora_len, bad_block_tokens
REMOVED_HEADER = struct.Struct("=2Q")  # event_id, num_blocks
PARTIAL_WARNINGS = 3                   # Dynamo warns about unpublished partial blocks at most 3 times
_warned = 0


@dataclass(frozen=True)
class PublisherConfig:
    """What dynamo_llm_init was given (trimmed, component defaulted)."""

    namespace: str
    component: str
    endpoint: str
    block_size: int

    @property
    def path(self) -> str:
        return f"{self.namespace}.{self.component}.{self.endpoint}"


def tokens_hash(tokens: Any, lora_name: str) -> int:
    """The hash the router indexes a block by: local_block_hash, salted with the adapter's name if any."""
    if not lora_name:
        return local_block_hash(tokens)
    data = array("I", tokens)
    return xxhash.xxh3_64_intdigest(lora_name.encode() + b"\0" + data.tobytes(), seed=HASH_SEED)


def decode_stored(blob: bytes, block_size: int) -> WireKvEvent:
    """The stored event of a blob written by dynamo_kv_event_publish_stored (layout in kv_events_c.c)."""
    global _warned
    event_id, kept, has_parent, parent, lora_len, bad = STORED_HEADER.unpack_from(blob)
    at = STORED_HEADER.size
    ids = array("Q", blob[at:at + 8 * kept])
    at += 8 * kept
    tokens = array("I", blob[at:at + 4 * kept * block_size])
    lora = blob[at + 4 * kept * block_size:].decode() if lora_len else ""
    if bad and _warned < PARTIAL_WARNINGS:
        _warned += 1
        log.warning("Block not published. Block size must be %d tokens to be published. Block size is: %s",
                    block_size, 0 if bad == 2**64 - 1 else bad)
    blocks = [WireBlock(ids[i], tokens_hash(tokens[i * block_size:(i + 1) * block_size], lora))
              for i in range(kept)]
    return WireKvEvent("stored", event_id, parent if has_parent else None, blocks)


def decode_removed(blob: bytes) -> WireKvEvent:
    """The removed event of a blob written by dynamo_kv_event_publish_removed."""
    event_id, count = REMOVED_HEADER.unpack_from(blob)
    ids = array("Q", blob[REMOVED_HEADER.size:REMOVED_HEADER.size + 8 * count])
    return WireKvEvent("removed", event_id, block_hashes=list(ids))


class CKvPublisher:
    """Publishes a C engine's KV events on the event plane of the runtime whose instance serves the engine's
    endpoint in this process (`bind`), else on its own runtime (the DYN_* deployment)."""

    def __init__(self, config: PublisherConfig, runtime: Any):
        self.config, self.own = config, runtime
        self.bound: Any = None
        self.ledger = BlockLedger()
        self.pending: list[WireKvEvent] = []
        self.wake = asyncio.Event()
        self.closing = False
        self.subject = subject(config.namespace, config.component, KV_EVENTS_TOPIC)
        self.task = asyncio.get_running_loop().create_task(self._run())

    @classmethod
    async def start(cls, config: PublisherConfig) -> "CKvPublisher":
        """Connect the own runtime (DYN_* environment) and serve the snapshot endpoint there. The request plane
        left out follows the discovery, as for a C runtime's config (nats with nats, tcp across processes)."""
        from pyimpl.runtime import DistributedRuntime
        from pyimpl.runtime.config import env_setting
        discovery = (env_setting("discovery_backend") or "mem").lower()
        plane = env_setting("request_plane") or {"mem": "inproc", "nats": "nats"}.get(discovery, "tcp")
        runtime = await DistributedRuntime.create(request_plane=plane)
        publisher = cls(config, runtime)
        try:
            await publisher._serve_snapshot(runtime)
            await publisher._announce(runtime)
        except BaseException:
            await publisher.close()
            raise
        return publisher

    def add(self, event: WireKvEvent) -> None:
        """Queue one event (loop thread); the publishing task sends what is queued as one batch."""
        self.ledger.apply(event)
        self.pending.append(event)
        self.wake.set()

    async def bind(self, runtime: Any) -> None:
        """The engine's endpoint is now served by `runtime`: publish as its instance, answer snapshots there."""
        await self.flush()
        self.bound = runtime
        await self._serve_snapshot(runtime)
        await self._announce(runtime)

    async def unbind(self, runtime: Any) -> None:
        """`runtime` no longer serves the engine's endpoint: back to the own runtime."""
        if self.bound is runtime:
            await self.flush()
            self.bound = None
            if not runtime.is_shutting_down():
                await runtime.endpoint(self._snapshot_path).unregister()

    @property
    def _snapshot_path(self) -> str:
        return f"{self.config.namespace}.{self.config.component}.{SNAPSHOT_ENDPOINT}"

    async def _serve_snapshot(self, runtime: Any) -> None:
        if runtime.dispatcher.serves(self._snapshot_path):
            return
        ledger, block_size = self.ledger, self.config.block_size

        async def snapshot(request: Any, context: Any = None) -> AsyncIterator[dict]:
            yield msgspec.to_builtins(ledger.snapshot(runtime.instance_id, block_size))
        await runtime.endpoint(self._snapshot_path).register(snapshot)

    async def _announce(self, runtime: Any) -> None:
        """Publish an empty batch as `runtime`'s instance now: the event plane sets up what it publishes with
        (zmq: binds and registers its socket) and subscribers connect before the engine's first real event,
        which would otherwise be lost to a subscriber still connecting."""
        try:
            await runtime.events.publish(self.subject, encode(KvEventBatch(runtime.instance_id,
                                                                           self.config.block_size, [])))
        except Exception:
            log.exception("announcing the KV publisher on %s failed", self.subject)

    async def flush(self) -> None:
        """Publish what is queued now (events stay in order: the task publishes one batch at a time)."""
        while (self.pending or self.wake.is_set()) and not self.task.done():
            await asyncio.sleep(0)

    async def _run(self) -> None:
        while not (self.closing and not self.pending):
            await self.wake.wait()
            self.wake.clear()
            batch, self.pending = self.pending, []
            if not batch:
                continue
            runtime = self.bound or self.own
            try:
                message = KvEventBatch(runtime.instance_id, self.config.block_size, batch)
                await runtime.events.publish(self.subject, encode(message))
            except Exception:
                log.exception("publishing %d KV events on %s failed", len(batch), self.subject)

    async def close(self) -> None:
        """Publish what is queued, stop, shut the own runtime down; idempotent."""
        if not self.closing:
            self.closing = True
            self.wake.set()
            await self.task
            if self.bound is not None:   # the serving runtime lives on: its snapshot endpoint goes
                await self.unbind(self.bound)
            await self.own.shutdown()
