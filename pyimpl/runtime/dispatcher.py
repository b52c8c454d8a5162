"""Worker side: the table of served endpoints, in-flight accounting and graceful drain."""
from __future__ import annotations

import asyncio
import inspect
import re
import time
from typing import Any, AsyncIterator, Callable, Iterable, Mapping, Optional, Protocol, Union

from .context import Context
from .errors import EndpointNotFoundError

Handler = Callable[..., AsyncIterator[Any]]    # handler(request) or handler(request, context): an async generator
MetricsLabels = Union[Mapping[str, Any], Iterable[tuple[str, Any]], None]   # extra labels on an endpoint's metrics


class StreamMetrics(Protocol):
    """Where the dispatcher reports served streams (the system server's EndpointMetrics)."""

    def declare(self, endpoint: str, labels: tuple[tuple[str, str], ...] = ()) -> None: ...

    def begin(self, endpoint: str) -> None: ...

    def end(self, endpoint: str, seconds: float) -> None: ...


class ServedEndpoint:
    """One endpoint's handler, called as handler(request) or handler(request, context)."""

    __slots__ = ("path", "handler", "takes_context", "metrics", "health_check_payload")

    def __init__(self, path: str, handler: Handler, metrics: Optional[StreamMetrics] = None,
                 health_check_payload: Any = None):
        self.path = path
        self.handler = handler
        self.takes_context = _takes_context(handler)
        self.metrics = metrics
        self.health_check_payload = health_check_payload

    def open(self, request: Any, context: Context) -> AsyncIterator:
        if self.takes_context:
            return self.handler(request, context)
        return self.handler(request)


LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*\Z")


def metrics_labels_of(labels: MetricsLabels) -> tuple[tuple[str, str], ...]:
    """serve_endpoint's metrics_labels ([(name, value)] or {name: value}) as checked (name, str) pairs."""
    if not labels:
        return ()
    pairs = tuple(labels.items()) if isinstance(labels, dict) else tuple(tuple(pair) for pair in labels)
    names = set()
    for pair in pairs:
        if len(pair) != 2 or not isinstance(pair[0], str) or not LABEL_NAME.match(pair[0]) \
                or pair[0].startswith("__") or pair[0] == "endpoint" or pair[0] in names:
            raise ValueError(f"metrics_labels: bad or duplicate (name, value) pair {pair!r}; names are "
                             f"Prometheus label names other than 'endpoint'")
        names.add(pair[0])
    return tuple((name, str(value)) for name, value in pairs)


def _takes_context(handler: Callable) -> bool:
    try:
        params = [p for p in inspect.signature(handler).parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    except (TypeError, ValueError):
        return True
    return len(params) >= 2


class Dispatcher:
    """Finds the endpoint for a path and counts in-flight streams so shutdown can drain them."""

    def __init__(self, metrics: Optional[StreamMetrics] = None):
        self.endpoints: dict[str, ServedEndpoint] = {}
        self.metrics = metrics
        self.inflight = 0
        self._idle: Optional[asyncio.Event] = None

    def add(self, path: str, handler: Handler, health_check_payload: Any = None,
            metrics_labels: MetricsLabels = None) -> ServedEndpoint:
        labels = metrics_labels_of(metrics_labels)
        served = ServedEndpoint(path, handler, self.metrics, health_check_payload)
        if self.metrics is not None:
            self.metrics.declare(path, labels)
        self.endpoints[path] = served
        return served

    def remove(self, path: str) -> None:
        """Stop routing `path` here: new requests get EndpointNotFoundError, streams in flight go on."""
        self.endpoints.pop(path, None)

    def serves(self, path: str) -> bool:
        return path in self.endpoints

    def lookup(self, path: str) -> ServedEndpoint:
        served = self.endpoints.get(path)
        if served is None:
            raise EndpointNotFoundError(f"endpoint {path!r} is not served by this instance")
        return served

    def begin(self, served: ServedEndpoint) -> float:
        self.inflight += 1
        if served.metrics is not None:
            served.metrics.begin(served.path)
        return time.monotonic() if served.metrics is not None else 0.0

    def end(self, served: ServedEndpoint, started: float) -> None:
        self.inflight -= 1
        if served.metrics is not None:
            served.metrics.end(served.path, time.monotonic() - started)
        if self.inflight == 0 and self._idle is not None:
            self._idle.set()

    async def drain(self, grace: float) -> bool:
        """Wait up to `grace` seconds for in-flight streams; True if all finished."""
        if self.inflight == 0:
            return True
        self._idle = asyncio.Event()
        try:
            await asyncio.wait_for(self._idle.wait(), grace)
            return True
        except asyncio.TimeoutError:
            return False
        finally:
            self._idle = None
