"""Optional system HTTP server (DYN_SYSTEM_PORT): /health (runs each endpoint's health-check
payload through its handler), /live and Prometheus /metrics."""
from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.metrics_core import Metric

from .context import Context

HEALTH_CHECK_TIMEOUT = 2.0

if TYPE_CHECKING:
    from .runtime import DistributedRuntime


class EndpointMetrics:
    """Per-endpoint request counter, in-flight gauge and duration histogram (dynamo_component_*),
    labelled `endpoint` plus the endpoint's metrics_labels. Endpoints with different label names
    get their own metric objects; one collector merges them into a single family per metric."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._groups: dict[tuple[str, ...], tuple[Counter, Gauge, Histogram]] = {}
        self._children: dict[str, tuple] = {}
        self.registry.register(self)

    def declare(self, endpoint: str, labels: tuple[tuple[str, str], ...] = ()) -> None:
        """Fix the extra (name, value) labels of `endpoint`'s samples (before its first request)."""
        names = tuple(name for name, _ in labels)
        group = self._groups.get(names)
        if group is None:
            label_names = ["endpoint", *names]
            group = self._groups[names] = (
                Counter("dynamo_component_requests_total", "Requests served", label_names, registry=None),
                Gauge("dynamo_component_inflight_requests", "Requests in flight", label_names, registry=None),
                Histogram("dynamo_component_request_duration_seconds", "Request duration", label_names,
                          registry=None))
        values = [value for _, value in labels]
        self._children[endpoint] = tuple(metric.labels(endpoint, *values) for metric in group)

    def collect(self):
        """One family per metric, holding the samples of every label group."""
        for index in range(3):
            family = None
            for group in self._groups.values():
                for part in group[index].collect():
                    if family is None:
                        family = Metric(part.name, part.documentation, part.type)
                    family.samples.extend(part.samples)
            if family is not None:
                yield family

    def _for(self, endpoint: str) -> tuple:
        children = self._children.get(endpoint)
        if children is None:
            self.declare(endpoint)
            children = self._children[endpoint]
        return children

    def begin(self, endpoint: str) -> None:
        requests, inflight, _ = self._for(endpoint)
        requests.inc()
        inflight.inc()

    def end(self, endpoint: str, seconds: float) -> None:
        _, inflight, duration = self._for(endpoint)
        inflight.dec()
        duration.observe(seconds)


class SystemServer:
    """A tiny asyncio HTTP/1.1 server; health turns 503 once shutdown starts. It listens on loopback unless told
    otherwise (DYN_SYSTEM_HOST): metrics and health are not for the whole network by default."""

    def __init__(self, runtime: "DistributedRuntime", port: int, host: str = "127.0.0.1"):
        self.runtime = runtime
        self.port = port
        self.host = host
        self.metrics = EndpointMetrics()
        self._server = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request_line = await reader.readline()
            while (await reader.readline()) not in (b"\r\n", b"\n", b""):
                pass
            parts = request_line.decode("latin-1").split()
            path = parts[1].split("?")[0] if len(parts) > 1 else "/"
            status, content_type, body = await self._route(path)
            writer.write(f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\n"
                         f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode() + body)
            await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    async def _route(self, path: str) -> tuple[str, str, bytes]:
        runtime = self.runtime
        if path == "/metrics":
            return "200 OK", CONTENT_TYPE_LATEST, generate_latest(self.metrics.registry)
        if path in ("/health", "/live"):
            checks = await self._health_checks() if path == "/health" else {}
            healthy = not runtime.is_shutting_down() and all(v == "ready" for v in checks.values())
            body = json.dumps({
                "status": "healthy" if healthy else ("shutting_down" if runtime.is_shutting_down() else "unhealthy"),
                "instance_id": runtime.instance_id,
                "endpoints": sorted(runtime.dispatcher.endpoints),
                "health_checks": checks,
            }).encode()
            return ("200 OK" if healthy else "503 Service Unavailable"), "application/json", body
        return "404 Not Found", "text/plain", b"not found\n"

    async def _health_checks(self) -> dict[str, str]:
        """Send each endpoint's health_check_payload to its handler: "ready" if a chunk comes back in time."""
        results = {}
        for path, served in list(self.runtime.dispatcher.endpoints.items()):
            if served.health_check_payload is None:
                continue
            generator = served.open(served.health_check_payload, Context())
            try:
                await asyncio.wait_for(generator.__anext__(), HEALTH_CHECK_TIMEOUT)
                results[path] = "ready"
            except Exception:
                results[path] = "notready"
            finally:
                await generator.aclose()
        return results
