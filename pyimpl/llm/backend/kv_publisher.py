"""A worker's KV events and load on the runtime's event plane, for KV-aware routing (kv_router/protocol.py).

The engine's events (from its stepping thread for the torch engine, inside its step for the mock) are
queued and published a millisecond later as one KvEventBatch on `{namespace}.{component}.kv_events`,
never one message per block; the published state is kept in a BlockLedger and served on the
`kv_snapshot` endpoint, so a router that starts late (or finds a gap in the event ids) catches up. The
engine's load (LoadMetrics) goes to `{namespace}.{component}.kv_load` when it changes, checked every
50 ms, and at least every second, with the id of the last KV event published: a router that missed the
last batches (a subscriber still connecting loses what is published meanwhile) learns it within a second.
"""
from __future__ import annotations

import asyncio
import collections
import logging
import time
from typing import TYPE_CHECKING, Any, AsyncIterator

import msgspec

from pyimpl.llm.engine.kv_events import KvCacheRemoved, KvCacheStored, KvEvent
from pyimpl.llm.kv_router.protocol import (KV_EVENTS_TOPIC, LOAD_TOPIC, SNAPSHOT_ENDPOINT, BlockLedger,
                                           KvEventBatch, LoadMetrics, WireBlock, WireKvEvent, encode, subject)

from .engine_api import GenerateEngine

if TYPE_CHECKING:
    from pyimpl.runtime import DistributedRuntime

log = logging.getLogger(__name__)
FLUSH_DELAY_S = 0.001       # events of a step (or a burst from the engine thread) travel together
LOAD_INTERVAL_S = 0.05
LOAD_HEARTBEAT_S = 1.0


def wire_event(event: KvEvent) -> WireKvEvent:
    """An engine KV event in the wire form the router reads."""
    if isinstance(event, KvCacheStored):
        return WireKvEvent("stored", event.event_id, event.parent_hash,
                           [WireBlock(b.block_hash, b.tokens_hash) for b in event.blocks])
    if isinstance(event, KvCacheRemoved):
        return WireKvEvent("removed", event.event_id, block_hashes=list(event.block_hashes))
    return WireKvEvent("cleared", event.event_id)


class KvPublisher:
    """Publishes one engine's KV events (unless `kv_events` is False) and load for the instance `rt` serves."""

    def __init__(self, rt: "DistributedRuntime", engine: GenerateEngine, namespace: str, component: str,
                 kv_events: bool = True):
        self.rt, self.engine, self.kv_events = rt, engine, kv_events
        self.worker_id = rt.instance_id
        self.events_subject = subject(namespace, component, KV_EVENTS_TOPIC)
        self.load_subject = subject(namespace, component, LOAD_TOPIC)
        self.snapshot_path = f"{namespace}.{component}.{SNAPSHOT_ENDPOINT}"
        self.ledger = BlockLedger()
        self.published_batches = 0
        self.published_event_id: int | None = None   # the last event sent (or lost sending): what the load says
        self._queue: collections.deque[KvEvent] = collections.deque()
        self._flush_pending = False
        self._publish_lock = asyncio.Lock()
        self._loop = asyncio.get_running_loop()
        self._unsubscribe: Any = None
        self._tasks: set[asyncio.Task] = set()
        self._load_task: asyncio.Task | None = None
        self._closed = False

    async def start(self) -> list[str]:
        """Subscribe to the engine, serve `kv_snapshot`, start the load loop; returns the discovery keys
        this added (for the served model's withdraw)."""
        keys = []
        if self.kv_events:
            self._unsubscribe = self.engine.subscribe_kv_events(self._on_event)
            endpoint = self.rt.endpoint(self.snapshot_path)
            await endpoint.register(self._snapshot)
            keys.append(endpoint.discovery_key(self.rt.instance_id))
        self._load_task = self._loop.create_task(self._publish_load())
        return keys

    # ---- KV events
    def _on_event(self, event: KvEvent) -> None:
        """Any thread: queue the event; the first one queued schedules a flush on the loop."""
        self._queue.append(event)
        if not self._flush_pending:
            self._flush_pending = True
            try:
                self._loop.call_soon_threadsafe(self._schedule_flush)
            except RuntimeError:        # the loop is closed: the worker is going away
                pass

    def _schedule_flush(self) -> None:
        task = self._loop.create_task(self._flush_later())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _flush_later(self) -> None:
        await asyncio.sleep(FLUSH_DELAY_S)
        await self.flush()

    async def flush(self) -> None:
        """Publish every queued event now, in order, as one batch."""
        async with self._publish_lock:
            self._flush_pending = False
            events = []
            while self._queue:
                events.append(wire_event(self._queue.popleft()))
            if not events:
                return
            for event in events:
                self.ledger.apply(event)
            batch = KvEventBatch(self.worker_id, self.engine.block_size, events)
            try:
                await self.rt.events.publish(self.events_subject, encode(batch))
                self.published_batches += 1
            except Exception:       # the ledger has them: a router that sees the id gap (or the load) re-syncs
                log.exception("publishing %d KV events on %s failed", len(events), self.events_subject)
            self.published_event_id = events[-1].event_id

    async def _snapshot(self, request: Any, context: Any = None) -> AsyncIterator[dict]:
        async with self._publish_lock:     # exactly what has been published
            batch = self.ledger.snapshot(self.worker_id, self.engine.block_size)
        yield msgspec.to_builtins(batch)

    # ---- load
    def load(self) -> LoadMetrics:
        stats = self.engine.stats()
        return LoadMetrics(self.worker_id, stats.kv_blocks_used, stats.kv_blocks_total, stats.num_running,
                           stats.num_waiting, self.published_event_id)

    async def _publish_load(self) -> None:
        last, last_at = None, 0.0
        while True:
            try:
                current = self.load()
                now = time.monotonic()
                if current != last or now - last_at >= LOAD_HEARTBEAT_S:
                    await self.rt.events.publish(self.load_subject, encode(current))
                    last, last_at = current, now
            except asyncio.CancelledError:
                raise
            except Exception:
                log.debug("publishing load failed", exc_info=True)
            await asyncio.sleep(LOAD_INTERVAL_S)

    async def close(self) -> None:
        """Stop listening to the engine and publish what is queued; idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._unsubscribe is not None:
            self._unsubscribe()
        for task in [*self._tasks, *([self._load_task] if self._load_task else [])]:
            task.cancel()
        await asyncio.gather(*self._tasks, *([self._load_task] if self._load_task else []),
                             return_exceptions=True)
        if not self.rt.is_shutting_down():      # else the event plane is closed: nobody to tell
            await self.flush()


async def start_kv_publisher(rt: "DistributedRuntime", engine: GenerateEngine, namespace: str, component: str,
                             kv_events: bool = True) -> tuple[KvPublisher, list[str]]:
    """What model_server calls once per served generate engine: the started publisher and its discovery keys."""
    publisher = KvPublisher(rt, engine, namespace, component, kv_events)
    return publisher, await publisher.start()
