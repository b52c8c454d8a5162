"""Prometheus metrics of the frontend, under Dynamo's `dynamo_frontend_*` names."""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics, generate_latest

if TYPE_CHECKING:
    from pyimpl.llm.kv_router.router import RouteDecision

disable_created_metrics()

PREFIX = "dynamo_frontend"
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
TOKEN_BUCKETS = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536)
HIT_RATE_BUCKETS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1.0)


@dataclass(frozen=True, slots=True)
class ModelSeries:
    """One model's labelled series of the per-request metrics (prometheus' labels() costs a lookup under a lock
    each call; a request touches these up to eight times)."""

    inflight: Gauge
    ttft: Histogram
    itl: Histogram
    duration: Histogram
    input_tokens: Histogram
    output_tokens: Histogram


class FrontendMetrics:
    """One registry per frontend so tests can run several in a process."""

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        labels = ("model",)
        self.requests = Counter(f"{PREFIX}_requests", "Requests handled", ("model", "endpoint", "request_type",
                                                                           "status"), registry=r)
        self.inflight = Gauge(f"{PREFIX}_inflight_requests", "Requests in progress", labels, registry=r)
        self.ttft = Histogram(f"{PREFIX}_time_to_first_token_seconds", "Time to first token", labels,
                              buckets=LATENCY_BUCKETS, registry=r)
        self.itl = Histogram(f"{PREFIX}_inter_token_latency_seconds", "Time between streamed chunks", labels,
                             buckets=LATENCY_BUCKETS, registry=r)
        self.duration = Histogram(f"{PREFIX}_request_duration_seconds", "Whole request time", labels,
                                  buckets=LATENCY_BUCKETS, registry=r)
        self.input_tokens = Histogram(f"{PREFIX}_input_sequence_tokens", "Prompt tokens", labels,
                                      buckets=TOKEN_BUCKETS, registry=r)
        self.output_tokens = Histogram(f"{PREFIX}_output_sequence_tokens", "Generated tokens", labels,
                                       buckets=TOKEN_BUCKETS, registry=r)

        self.migrations = Counter(f"{PREFIX}_model_migration", "Requests moved to another worker after theirs was "
                                  "lost (migration_type: new_request before the first token, ongoing_request after)",
                                  ("model", "migration_type"), registry=r)

        self.kv_hit_rate = Histogram(f"{PREFIX}_kv_hit_rate", "KV router's predicted cache hit rate of a request "
                                     "(cached prompt blocks / prompt blocks on the chosen worker)", labels,
                                     buckets=HIT_RATE_BUCKETS, registry=r)
        self.cached_tokens = Histogram(f"{PREFIX}_cached_tokens", "Prompt tokens the KV router expects the chosen "
                                       "worker to have cached", labels, buckets=TOKEN_BUCKETS, registry=r)
        self.kv_indexed_blocks = Gauge(f"{PREFIX}_kv_indexed_blocks", "KV blocks the KV router knows a worker to "
                                       "hold (from its KV events), at scrape time", ("model", "worker_id"), registry=r)
        self._series: dict[str, ModelSeries] = {}
        self._request_counts: dict[tuple[str, str, str, str], Counter] = {}

    def series(self, model: str) -> ModelSeries:
        """`model`'s labelled per-request series (made once per model)."""
        found = self._series.get(model)
        if found is None:
            found = self._series[model] = ModelSeries(
                self.inflight.labels(model), self.ttft.labels(model), self.itl.labels(model),
                self.duration.labels(model), self.input_tokens.labels(model), self.output_tokens.labels(model))
        return found

    def count_request(self, model: str, endpoint: str, request_type: str, status: str) -> None:
        """One finished request in dynamo_frontend_requests."""
        key = (model, endpoint, request_type, status)
        counter = self._request_counts.get(key)
        if counter is None:
            counter = self._request_counts[key] = self.requests.labels(*key)
        counter.inc()

    def observe_route(self, model: str, decision: "RouteDecision") -> None:
        """One KV routing decision (the ModelManager's on_route hook)."""
        self.kv_hit_rate.labels(model).observe(decision.hit_rate)
        self.cached_tokens.labels(model).observe(decision.cached_tokens)

    def count_migration(self, model: str, migration_type: str) -> None:
        """One request migration (the ModelManager's on_migration hook)."""
        self.migrations.labels(model, migration_type).inc()

    def set_kv_index(self, sizes: dict[str, dict[int, int]]) -> None:
        """The KV routers' index sizes now (model -> worker -> blocks); workers gone since are dropped."""
        self.kv_indexed_blocks.clear()
        for model, workers in sizes.items():
            for worker, blocks in workers.items():
                self.kv_indexed_blocks.labels(model, str(worker)).set(blocks)

    def render(self) -> bytes:
        """The text exposition format."""
        return generate_latest(self.registry)
