"""KvRouter: picks the worker for a prompt from the prefix index (fed by KV events, or approximated from its own
decisions) and Dynamo's cost, and tracks the requests it routed until they end."""
from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass
from typing import Callable, Iterable, Sequence

from .approximate import DEFAULT_TTL_S, ApproxIndexer
from .hashing import prefix_ids, tokens_hashes
from .indexer import RadixIndexer
from .protocol import KvEventBatch, LoadMetrics
from .scheduler import ActiveSequences, select_worker, worker_costs

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class KvRouterConfig:
    """Dynamo's KV router settings: `--kv-cache-block-size`, `--kv-overlap-score-weight`, `--router-temperature`,
    and `--no-kv-events` (use_kv_events=False: approximate the caches, blocks live `approx_ttl_s`)."""

    block_size: int = 16
    overlap_score_weight: float = 1.0
    router_temperature: float = 0.0
    use_kv_events: bool = True
    approx_ttl_s: float = DEFAULT_TTL_S

    def __post_init__(self) -> None:
        if self.block_size <= 0:
            raise ValueError(f"kv cache block size must be > 0, got {self.block_size}")
        if self.overlap_score_weight < 0:
            raise ValueError(f"kv overlap score weight must be >= 0, got {self.overlap_score_weight}")
        if self.router_temperature < 0:
            raise ValueError(f"router temperature must be >= 0, got {self.router_temperature}")


@dataclass(frozen=True)
class RouteDecision:
    """Where a prompt goes, and how much of it the router expects that worker to have cached."""

    worker_id: int
    overlap_blocks: int
    prompt_blocks: int
    cached_tokens: int

    @property
    def hit_rate(self) -> float:
        """Predicted cached blocks / prompt blocks (0 for a prompt shorter than a block)."""
        return self.overlap_blocks / self.prompt_blocks if self.prompt_blocks else 0.0


class KvRouter:
    """route() -> RouteDecision; prefill_done()/finished() as the request progresses; apply_events()/apply_load()
    from the event plane; retain()/remove_worker() as workers come and go."""

    def __init__(self, config: KvRouterConfig = KvRouterConfig(), clock: Callable[[], float] = time.monotonic,
                 rng: random.Random | None = None):
        self.config = config
        self.indexer: RadixIndexer = (RadixIndexer(config.block_size) if config.use_kv_events
                                      else ApproxIndexer(config.block_size, config.approx_ttl_s, clock))
        self.active = ActiveSequences()
        self.loads: dict[int, LoadMetrics] = {}
        self.rng = rng or random.Random()

    def route(self, request_id: str, token_ids: Sequence[int], worker_ids: Sequence[int],
              pinned: int | None = None) -> RouteDecision:
        """Choose among `worker_ids` (or take `pinned`) for a prompt and count the request on that worker until
        finished(request_id)."""
        if not worker_ids and pinned is None:
            raise ValueError("no worker to route to")
        block_size = self.config.block_size
        local = tokens_hashes(token_ids, block_size)
        hashes = prefix_ids(local)
        overlaps = self.indexer.find_matches_prefixes(hashes)
        if pinned is not None:
            worker = pinned
        else:
            costs = worker_costs(worker_ids, overlaps, hashes, len(token_ids), block_size, self.active, self.loads,
                                 self.config.overlap_score_weight)
            sizes = {w: self.indexer.num_blocks(w) for w in worker_ids} if self.config.router_temperature <= 0 else {}
            worker = select_worker(costs, self.config.router_temperature, sizes, self.rng)
        overlap = overlaps.get(worker, 0)
        prompt_blocks = -(-len(token_ids) // block_size)
        self.active.add(request_id, worker, hashes, prompt_blocks, max(0, len(token_ids) - overlap * block_size))
        if isinstance(self.indexer, ApproxIndexer):
            load = self.loads.get(worker)
            self.indexer.record(worker, local, hashes, load.total_blocks if load is not None else None)
        return RouteDecision(worker, overlap, prompt_blocks, overlap * block_size)

    def prefill_done(self, request_id: str) -> None:
        """The request's first token arrived."""
        self.active.prefill_done(request_id)

    def finished(self, request_id: str) -> None:
        """The request ended, however it ended."""
        self.active.free(request_id)

    def apply_events(self, batch: KvEventBatch) -> bool:
        """Apply a worker's KV events; False when some were missed (re-sync that worker from a snapshot)."""
        return self.indexer.apply(batch)

    def reset_worker(self, batch: KvEventBatch) -> None:
        """Replace a worker's indexed blocks by a snapshot (one batch of stored events)."""
        self.indexer.clear(batch.worker_id)
        if not self.indexer.apply(batch):
            log.warning("snapshot of worker %x has blocks whose parent it lacks; indexed what it could",
                        batch.worker_id)

    def apply_load(self, load: LoadMetrics) -> None:
        """A worker's published load (its active blocks weigh in the cost when above the router's own count)."""
        self.loads[load.worker_id] = load

    def remove_worker(self, worker_id: int) -> None:
        """Forget a worker: its blocks, load and requests."""
        self.indexer.remove_worker(worker_id)
        self.active.remove_worker(worker_id)
        self.loads.pop(worker_id, None)

    def retain(self, worker_ids: Iterable[int]) -> None:
        """Forget every worker not in `worker_ids` (those still in discovery)."""
        keep = set(worker_ids)
        for worker in {*self.indexer.worker_ids(), *self.loads} - keep:
            self.remove_worker(worker)

    def find_matches(self, token_ids: Sequence[int]) -> dict[int, int]:
        """Per worker, how many of the prompt's first blocks the index says it caches."""
        return self.indexer.find_matches(token_ids)
