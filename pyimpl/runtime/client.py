"""Client of one endpoint: tracks its instances from discovery and opens response streams
on the plane each instance advertises, choosing the instance by policy or a routing hook."""
from __future__ import annotations

import asyncio
import inspect
import itertools
import logging
import random as _random
from typing import TYPE_CHECKING, Any, AsyncIterator, Awaitable, Callable, Collection, Optional, Sequence, Union

from .context import Context, cancellation_pending
from .errors import DisconnectedError, EndpointNotFoundError, NoInstancesError
from .planes import ResponseStream

if TYPE_CHECKING:
    from .endpoint import Endpoint, InstanceRecord

log = logging.getLogger("pyimpl.runtime.client")

# router(instance_ids, request) -> instance_id (or an awaitable of one): the hook a KV-aware router plugs into.
Router = Callable[[Sequence[int], Any], Union[int, Awaitable[int]]]


class Client:
    """`generate` (router hook or round robin), `round_robin`, `random`, `direct`."""

    def __init__(self, endpoint: "Endpoint", router: Optional[Router] = None,
                 timeout: Optional[float] = None):
        self.endpoint = endpoint
        self.runtime = endpoint.runtime
        self.router = router
        self.timeout = self.runtime.config.instance_wait_timeout if timeout is None else timeout
        self._instances: dict[int, InstanceRecord] = {}
        self._ids: list[int] = []            # the live instances: known and not reported down
        self._down: dict[int, asyncio.TimerHandle] = {}
        self._watched: set[int] = set()       # instances whose plane tells us when they go away
        self._rr = itertools.count()
        self._changed = asyncio.Event()
        self._synced = asyncio.Event()
        self._watch_task: Optional[asyncio.Task] = None

    async def start(self) -> "Client":
        prefix = self.endpoint.discovery_prefix
        discovery = self.runtime.discovery
        for key, record in (await discovery.list(prefix)).items():
            self._add(record)
        self._watch_task = asyncio.get_running_loop().create_task(self._follow(prefix))
        self.runtime.close_at_shutdown(self)
        return self

    async def _follow(self, prefix: str) -> None:
        while not self.runtime.is_shutting_down():
            try:
                async for event in self.runtime.discovery.watch(prefix):
                    if event.kind == "put" and event.value:
                        self._add(event.value)
                    elif event.kind == "delete":
                        self._remove(int(event.key.rsplit("/", 1)[1], 16))
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if cancellation_pending():
                    raise asyncio.CancelledError from exc
                log.warning("discovery watch on %s failed (%s); retrying", prefix, exc)
                await asyncio.sleep(0.5)

    def _add(self, record: InstanceRecord) -> None:
        iid = int(record["instance_id"])
        if iid not in self._instances and iid not in self._down:
            self._ids = sorted([*self._ids, iid])
        self._instances[iid] = record
        self._notify()

    def _remove(self, iid: int) -> None:
        record = self._instances.pop(iid, None)
        timer = self._down.pop(iid, None)
        if timer is not None:
            timer.cancel()
        if record is not None:
            self._ids = [i for i in self._ids if i != iid]
            self._notify()

    def report_instance_down(self, instance_id: int) -> None:
        """Take an instance out of rotation now (its connection was refused, or a stream found it gone) rather than
        when its discovery key expires; it comes back after one discovery TTL if its key is still there (a dead
        instance's key is gone by then, a live one that was only unreachable is tried again)."""
        if instance_id not in self._instances or instance_id in self._down:
            return
        log.info("instance %x of %s is down: out of rotation", instance_id, self.endpoint.path)
        self._ids = [i for i in self._ids if i != instance_id]
        self._down[instance_id] = asyncio.get_running_loop().call_later(
            self.runtime.config.discovery_ttl, self._readmit, instance_id)
        self._notify()

    def _readmit(self, iid: int) -> None:
        if self._down.pop(iid, None) is not None and iid in self._instances:
            self._ids = sorted([*self._ids, iid])
            self._notify()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    # --- instances ----------------------------------------------------------------------
    def instance_ids(self) -> list[int]:
        """The live instances (known in discovery and not reported down), the ones requests go to."""
        return list(self._ids)

    async def instance_changes(self) -> AsyncIterator[list[int]]:
        """The instance ids now, then again after every change discovery reports (until the caller stops)."""
        while True:
            changed = self._changed
            yield list(self._ids)
            await changed.wait()

    async def wait_for_instances(self, timeout: Optional[float] = None) -> list[int]:
        """Wait until at least one instance is known; raises EndpointNotFoundError on timeout."""
        if self._ids:
            return list(self._ids)
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while not self._ids:
            remaining = None if deadline is None else deadline - loop.time()
            if remaining is not None and remaining <= 0:
                raise EndpointNotFoundError(
                    f"no instances of endpoint {self.endpoint.path!r} appeared within {timeout:g}s")
            try:
                await asyncio.wait_for(self._changed.wait(), remaining)
            except asyncio.TimeoutError:
                pass
        return list(self._ids)

    # --- requests -----------------------------------------------------------------------
    async def generate(self, request: Any, context: Optional[Context] = None,
                       annotated: bool = True) -> ResponseStream:
        """Default policy: the routing hook if set, else round robin. Every policy yields Annotated
        items, or (annotated=False, as in NVIDIA Dynamo) the handler's data items themselves."""
        if self.router is None:
            return await self.round_robin(request, context, annotated)
        ids = self._ids or await self.wait_for_instances(self.timeout)
        chosen = self.router(ids, request)
        if inspect.isawaitable(chosen):
            chosen = await chosen
        return await self._open(chosen, request, context, annotated)

    async def round_robin(self, request: Any, context: Optional[Context] = None,
                          annotated: bool = True) -> ResponseStream:
        ids = self._ids or await self.wait_for_instances(self.timeout)
        return await self._open_any(ids, next(self._rr), request, context, annotated)

    async def random(self, request: Any, context: Optional[Context] = None,
                     annotated: bool = True) -> ResponseStream:
        ids = self._ids or await self.wait_for_instances(self.timeout)
        return await self._open_any(ids, _random.randrange(len(ids)), request, context, annotated)

    async def direct(self, request: Any, instance_id: int, context: Optional[Context] = None,
                     annotated: bool = True) -> ResponseStream:
        if instance_id not in self._instances:
            raise NoInstancesError(f"instance {instance_id:x} of {self.endpoint.path!r} is not known")
        return await self._open(instance_id, request, context, annotated)

    async def open_stream(self, request: Any, context: Optional[Context] = None, annotated: bool = True,
                          exclude: Collection[int] = (), timeout: Optional[float] = None,
                          among: Optional[Collection[int]] = None,
                          choose: Optional[Router] = None) -> tuple[int, ResponseStream]:
        """Open on an instance chosen by `choose(instance_ids, request)` for this call, else by the client's policy
        (routing hook, else round robin), among those not in
        `exclude` (e.g. where this request already failed) and, when given, in `among` (read at each try, so a live
        set may grow while this waits), moving on from one that cannot be reached (and reporting it down); returns
        the instance id with its stream, so a retry can exclude it. Waits up to `timeout` (default: the client's) for
        an eligible instance, then raises NoInstancesError."""
        router = choose or self.router
        loop = asyncio.get_running_loop()
        deadline = loop.time() + (self.timeout if timeout is None else timeout)
        skipped, failure = set(exclude), ""
        while True:
            ids = [i for i in self._ids if i not in skipped and (among is None or i in among)]
            if not ids:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    raise NoInstancesError(f"no instance of {self.endpoint.path!r} is left to try{failure}")
                changed = self._changed
                try:
                    await asyncio.wait_for(changed.wait(), remaining)
                except asyncio.TimeoutError:
                    pass
                continue
            if router is None:
                chosen = ids[next(self._rr) % len(ids)]
            else:
                chosen = router(ids, request)
                if inspect.isawaitable(chosen):
                    chosen = await chosen
            try:
                return chosen, await self._open(chosen, request, context, annotated)
            except (DisconnectedError, NoInstancesError) as exc:   # refused, or gone: nothing was sent
                skipped.add(chosen)
                self.report_instance_down(chosen)
                failure = f" (last: {exc})"

    async def _open_any(self, ids: list[int], start: int, request: Any, context: Optional[Context],
                        annotated: bool = True) -> ResponseStream:
        """Open on ids[start], moving on to the next instance when one cannot be reached."""
        for attempt in range(len(ids)):
            chosen = ids[(start + attempt) % len(ids)]
            try:
                return await self._open(chosen, request, context, annotated)
            except DisconnectedError:
                self.report_instance_down(chosen)
                if attempt == len(ids) - 1:
                    raise

    async def _open(self, instance_id: int, request: Any, context: Optional[Context],
                    annotated: bool = True) -> ResponseStream:
        record = self._instances.get(instance_id)
        if record is None:
            raise NoInstancesError(f"instance {instance_id:x} of {self.endpoint.path!r} is not known")
        if context is None:
            context = Context()
        transport = record["transport"]
        plane = await self.runtime.plane_client(transport["type"])
        stream = await plane.open(transport, instance_id, self.endpoint.path, request, context, annotated)
        stream.on_lost(lambda: self.report_instance_down(instance_id))   # learn of a lost instance at once
        if instance_id not in self._watched:     # and when it goes away between requests (a closed connection)
            self._watched.add(instance_id)
            plane.watch_lost(transport, lambda: self._lost_between_requests(instance_id))
        return stream

    def _lost_between_requests(self, instance_id: int) -> None:
        self._watched.discard(instance_id)
        self.report_instance_down(instance_id)

    async def close(self) -> None:
        for timer in self._down.values():
            timer.cancel()
        self._down.clear()
        task, self._watch_task = self._watch_task, None
        if task is not None:
            task.cancel()
            await asyncio.wait([task], timeout=2.0)

