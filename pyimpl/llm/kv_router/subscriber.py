"""Feeds a KvRouter from the runtime's event plane: workers' KV event batches and load, a snapshot from a worker's
`kv_snapshot` endpoint when the router meets it (a late router catches up) or misses its events (a gap in the
event ids, or a load message naming an event it has not seen), and the departure of workers from discovery
(their blocks are dropped)."""
from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any, AsyncIterator, Protocol, Sequence

import msgspec

from .protocol import (KV_EVENTS_TOPIC, LOAD_TOPIC, SNAPSHOT_ENDPOINT, KvEventBatch, decode_batch, decode_load,
                       subject)
from .router import KvRouter

if TYPE_CHECKING:
    from pyimpl.runtime import DistributedRuntime

log = logging.getLogger(__name__)
# At most one re-sync per worker per this many seconds: a publisher whose event ids are not consecutive (a C engine
# numbers its own events) must not cost a snapshot per batch.
RESYNC_INTERVAL_S = 5.0
LOST_AFTER_S = 0.2       # an event a worker's load says it published and that has not arrived this long after is lost


class InstanceSource(Protocol):
    """The live instances of the workers' endpoint (pyimpl.runtime Client)."""

    def instance_changes(self) -> AsyncIterator[list[int]]: ...


def as_batch(data: Any) -> KvEventBatch:
    """A snapshot answer as a KvEventBatch: msgpack bytes (protocol.encode) or the same fields as a dict."""
    if isinstance(data, (bytes, bytearray, memoryview)):
        return decode_batch(bytes(data))
    return msgspec.convert(data, KvEventBatch)


class KvEventSubscriber:
    """Subscribes to `{namespace}.{component}.kv_events` (unless `kv_events` is False: approximate mode, which still
    reads the load, for the workers' cache sizes) and `.kv_load`, and keeps `router` in step with the workers of
    `instances`; start() / stop()."""

    def __init__(self, rt: "DistributedRuntime", namespace: str, component: str, router: KvRouter, instances: InstanceSource,
                 snapshot_timeout_s: float = 2.0, kv_events: bool = True):
        self.rt, self.router, self.instances, self.kv_events = rt, router, instances, kv_events
        self.namespace, self.component = namespace, component
        self.snapshot_timeout_s = snapshot_timeout_s
        self._unsubscribe: list[Any] = []
        self._snapshots: Any = None
        self._syncing: dict[int, list[KvEventBatch]] = {}   # worker -> live batches held back during its snapshot
        self._known: set[int] = set()
        self._last_event: dict[int, int | None] = {}         # worker -> id of its last event applied (None: none
                                                             # published yet); absent: unknown (no snapshot)
        self._misconfigured: set[int] = set()                # workers whose block size was refused (logged)
        self._resynced_at: dict[int, float] = {}
        self._behind: dict[int, tuple[int, float]] = {}     # worker -> (event id its load named, when) not seen yet
        self._tasks: set[asyncio.Task] = set()
        self._follow: asyncio.Task | None = None
        self.synced = asyncio.Event()                        # set once every worker seen at start was synced

    async def start(self) -> "KvEventSubscriber":
        events = self.rt.events
        self._unsubscribe = [
            await events.subscribe(subject(self.namespace, self.component, LOAD_TOPIC), self._on_load)]
        if self.kv_events:
            self._unsubscribe.append(
                await events.subscribe(subject(self.namespace, self.component, KV_EVENTS_TOPIC), self._on_events))
            self._snapshots = await self.rt.endpoint(
                f"{self.namespace}.{self.component}.{SNAPSHOT_ENDPOINT}").client()
        self._follow = asyncio.create_task(self._follow_instances())
        return self

    async def stop(self) -> None:
        for unsubscribe in self._unsubscribe:
            await unsubscribe()
        self._unsubscribe = []
        tasks = [*self._tasks, *([self._follow] if self._follow else [])]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # ---- live events ------------------------------------------------------------------------
    def _on_events(self, _subject: str, data: bytes) -> None:
        try:
            batch = decode_batch(data)
        except msgspec.DecodeError:
            log.warning("undecodable KV event batch on %s ignored", _subject)
            return
        worker = batch.worker_id
        held = self._syncing.get(worker)
        if held is not None:
            held.append(batch)
            return
        last = self._last_event.get(worker)
        gap = bool(batch.events) and last is not None and batch.events[0].event_id > last + 1
        if not self._apply(batch) or gap:
            self._resync(worker)

    def _resync(self, worker: int) -> None:
        now = time.monotonic()
        if now - self._resynced_at.get(worker, -RESYNC_INTERVAL_S) >= RESYNC_INTERVAL_S:
            self._resynced_at[worker] = now
            log.info("KV events of worker %x were missed; re-syncing it from a snapshot", worker)
            self.sync(worker)

    def _apply(self, batch: KvEventBatch) -> bool:
        """Apply a live batch; False when it shows that events were missed."""
        if batch.events:
            self._last_event[batch.worker_id] = batch.events[-1].event_id
        try:
            return self.router.apply_events(batch)
        except ValueError as exc:       # a block size the router does not use: nothing to index (said once)
            if batch.worker_id not in self._misconfigured:
                self._misconfigured.add(batch.worker_id)
                log.error("%s", exc)
            return True

    def _on_load(self, _subject: str, data: bytes) -> None:
        try:
            load = decode_load(data)
        except msgspec.DecodeError:
            log.warning("undecodable load message on %s ignored", _subject)
            return
        self.router.apply_load(load)
        worker, published = load.worker_id, load.last_kv_event_id
        if not self.kv_events or published is None or worker in self._syncing or worker not in self._last_event:
            return
        seen = self._last_event[worker]
        if seen is not None and seen >= published:
            self._behind.pop(worker, None)
            return
        # Published, not seen: lost, or still on its way (NATS delivers two subjects' messages independently), so
        # only a load message at least LOST_AFTER_S later that still names an unseen event triggers a re-sync.
        now = time.monotonic()
        target, since = self._behind.setdefault(worker, (published, now))
        if now - since >= LOST_AFTER_S and (seen is None or seen < target):
            del self._behind[worker]
            self._resync(worker)

    # ---- workers coming and going -----------------------------------------------------------
    async def _follow_instances(self) -> None:
        first = True
        async for ids in self.instances.instance_changes():
            self.router.retain(ids)
            new = [i for i in ids if i not in self._known]
            for gone in self._known.difference(ids):
                for state in (self._last_event, self._behind, self._resynced_at):
                    state.pop(gone, None)
            self._known = set(ids)
            syncs = [self.sync(worker) for worker in new] if self.kv_events else []
            if first:
                first = False
                task = asyncio.create_task(self._mark_synced(syncs))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    async def _mark_synced(self, syncs: Sequence[asyncio.Task]) -> None:
        await asyncio.gather(*syncs, return_exceptions=True)
        self.synced.set()

    def sync(self, worker_id: int) -> asyncio.Task:
        """Replace the worker's indexed blocks by its snapshot (live events that arrive meanwhile are applied after
        it); a worker without a snapshot endpoint keeps what its live events say."""
        if worker_id not in self._syncing:
            self._syncing[worker_id] = []
        task = asyncio.create_task(self._sync(worker_id))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _sync(self, worker_id: int) -> None:
        held = self._syncing.setdefault(worker_id, [])
        watermark: int | None = None
        try:
            batch = await asyncio.wait_for(self._fetch_snapshot(worker_id), self.snapshot_timeout_s)
            if batch is not None:
                self.router.reset_worker(KvEventBatch(worker_id, batch.block_size, batch.events))
                watermark = batch.last_event_id
                if watermark is None and batch.events:      # a publisher that does not say it
                    watermark = max(e.event_id for e in batch.events)
                self._last_event[worker_id] = watermark
            else:
                self._last_event.pop(worker_id, None)
        except asyncio.CancelledError:
            raise
        except Exception as exc:     # no snapshot endpoint (e.g. a C engine), or it failed: live events only
            log.debug("no KV snapshot from worker %x: %s", worker_id, exc)
            self._last_event.pop(worker_id, None)
        finally:
            pending = self._syncing.pop(worker_id, held)
        for live in pending:
            self._apply(KvEventBatch(live.worker_id, live.block_size,
                                     [e for e in live.events if watermark is None or e.event_id > watermark]))

    async def _fetch_snapshot(self, worker_id: int) -> KvEventBatch | None:
        client = self._snapshots
        if worker_id not in client.instance_ids():
            await client.wait_for_instances(self.snapshot_timeout_s)
            if worker_id not in client.instance_ids():
                return None
        stream = await client.direct({}, worker_id, annotated=False)
        answer = None
        async for item in stream:
            answer = item
        return None if answer is None else as_batch(answer)
