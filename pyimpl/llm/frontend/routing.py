"""Which worker instance serves a request of one model: round robin, random, or KV-aware (pyimpl.llm.kv_router fed
from the event plane, or approximated from its own decisions), or the instance a request pins with
`nvext.backend_instance_id`. The runtime client opens the stream; this module only chooses."""
from __future__ import annotations

import asyncio
import logging
import random
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Collection, Optional

from pyimpl.llm.errors import InvalidRequestError
from pyimpl.llm.frontend.worker_streams import close_stream
from pyimpl.llm.kv_router.router import KvRouter, KvRouterConfig, RouteDecision
from pyimpl.llm.kv_router.subscriber import KvEventSubscriber

if TYPE_CHECKING:
    from pyimpl.runtime import Client, DistributedRuntime

log = logging.getLogger(__name__)

ROUTER_MODES = ("round-robin", "random", "kv")
# on_route(model name, decision): what the KV router predicted for a request (the frontend's hit-rate metrics)
RouteListener = Callable[[str, RouteDecision], None]


@dataclass(frozen=True)
class RouterSettings:
    """`--router-mode`, and for kv: `--kv-overlap-score-weight`, `--router-temperature`, `--no-kv-events`
    (use_kv_events=False), `--kv-cache-block-size` (None: the model card's)."""

    mode: str = "round-robin"
    overlap_score_weight: float = 1.0
    router_temperature: float = 0.0
    use_kv_events: bool = True
    kv_cache_block_size: Optional[int] = None

    def __post_init__(self) -> None:
        if self.mode not in ROUTER_MODES:
            raise ValueError(f"unknown router mode {self.mode!r}; expected one of {', '.join(ROUTER_MODES)}")
        if self.kv_cache_block_size is not None and self.kv_cache_block_size <= 0:
            raise ValueError(f"kv cache block size must be > 0, got {self.kv_cache_block_size}")
        self.kv_config(16)   # the KV settings' own checks, whatever the mode

    def kv_config(self, card_block_size: int) -> KvRouterConfig:
        return KvRouterConfig(block_size=self.kv_cache_block_size or card_block_size,
                              overlap_score_weight=self.overlap_score_weight,
                              router_temperature=self.router_temperature, use_kv_events=self.use_kv_events)


class ModelRouter:
    """Chooses instances of one model's endpoint (`client`: a runtime Client) and opens streams on them."""

    def __init__(self, rt: "DistributedRuntime", settings: RouterSettings, model: str, endpoint: str,
                 block_size: int, client: "Client", on_route: Optional[RouteListener] = None):
        self.rt, self.settings, self.model, self.endpoint, self.client = rt, settings, model, endpoint, client
        self.on_route = on_route
        self.kv: Optional[KvRouter] = None
        self._subscriber: Optional[KvEventSubscriber] = None
        if settings.mode == "kv":
            self.kv = KvRouter(settings.kv_config(block_size))

    async def start(self) -> "ModelRouter":
        if self.kv is None:
            return self
        namespace, component = self.endpoint.split(".")[:2]
        self._subscriber = await KvEventSubscriber(self.rt, namespace, component, self.kv, self.client,
                                                   kv_events=self.settings.use_kv_events).start()
        return self

    async def stop(self) -> None:
        if self._subscriber is not None:
            await self._subscriber.stop()

    async def wait_synced(self, timeout: float) -> None:
        """Wait until the workers present at start were synced from their snapshots (tests, benchmarks)."""
        if self._subscriber is not None:
            await asyncio.wait_for(self._subscriber.synced.wait(), timeout)

    async def open(self, wire: dict, exclude: Collection[int], timeout: float, pinned: Optional[int] = None,
                   among: Optional[Collection[int]] = None) -> tuple[int, Any]:
        """(instance id, response stream) for `wire` on an instance in `among` (None: any) and not in `exclude`
        (`pinned`: that instance only, a 400 when it does not serve this model); runtime errors as raised."""
        if pinned is not None:
            if pinned not in self.client.instance_ids() or (among is not None and pinned not in among):
                raise InvalidRequestError(f"'nvext.backend_instance_id': no instance {pinned} serves "
                                          f"'{self.model}'", "nvext.backend_instance_id")
            among = (pinned,)
        if self.kv is None:
            choose = None if pinned is None and self.settings.mode == "round-robin" else \
                (lambda ids, _: pinned if pinned is not None else random.choice(ids))
            return await self.client.open_stream(wire, annotated=False, exclude=exclude, timeout=timeout,
                                                 among=among, choose=choose)
        request_id = uuid.uuid4().hex
        decisions: list[RouteDecision] = []

        def choose_kv(ids: list[int], request: dict) -> int:
            decision = self.kv.route(request_id, request.get("token_ids") or (), ids, pinned)
            decisions.append(decision)
            return decision.worker_id

        try:
            instance, stream = await self.client.open_stream(wire, annotated=False, exclude=exclude,
                                                             timeout=timeout, among=among, choose=choose_kv)
        except BaseException:
            self.kv.finished(request_id)
            raise
        if self.on_route is not None and decisions:
            self.on_route(self.model, decisions[-1])
        return instance, RoutedStream(stream, lambda: self.kv.prefill_done(request_id),
                                      lambda: self.kv.finished(request_id))


class RoutedStream:
    """A worker stream that tells the KV router when its first item arrives and when it ends (however it ends)."""

    def __init__(self, stream: Any, on_first: Callable[[], None], on_end: Callable[[], None]):
        self._stream, self._on_first, self._on_end = stream, on_first, on_end
        self._started = self._ended = False

    def __aiter__(self) -> "RoutedStream":
        return self

    async def __anext__(self) -> Any:
        try:
            item = await self._stream.__anext__()
        except BaseException:
            self._end()
            raise
        if not self._started:
            self._started = True
            self._on_first()
        return item

    def _end(self) -> None:
        if not self._ended:
            self._ended = True
            self._on_end()

    async def aclose(self) -> None:
        self._end()
        await close_stream(self._stream)


def with_worker_id(chunk: dict, served: list[int]) -> dict:
    """A response chunk with `nvext.worker_id`: the instance that served the request (the latest one, after a
    migration), as Dynamo answers `"nvext": {"extra_fields": ["worker_id"]}`."""
    if not served:
        return chunk
    return {**chunk, "nvext": {**chunk.get("nvext", {}), "worker_id": served[-1]}}


def with_nvext(body: dict, chunks: list[dict]) -> dict:
    """A non-streamed response body with the `nvext` of the last chunk that had one."""
    for chunk in reversed(chunks):
        if "nvext" in chunk:
            return {**body, "nvext": chunk["nvext"]}
    return body
