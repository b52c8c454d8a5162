"""DistributedRuntime: owns discovery, the request plane (server and clients) and the lease of
what it registers; names (namespace -> component -> endpoint) live in endpoint.py."""
from __future__ import annotations

import asyncio
import logging
import secrets
from typing import TYPE_CHECKING, Any, AsyncIterator, Optional

from .config import RuntimeConfig
from .discovery.base import Discovery, WatchEvent
from .dispatcher import Dispatcher, Handler, MetricsLabels
from .endpoint import Component, Endpoint, Namespace
from .errors import ConfigurationError, ConnectError
from .events import EventPlane, open_event_plane
from .logs import configure_logging
from .planes import PlaneClient, PlaneServer, Transport

if TYPE_CHECKING:
    from nats.aio.client import Client as NATS

    from .client import Client

log = logging.getLogger("pyimpl.runtime")


class DistributedRuntime:
    """Owns discovery, the request plane (server and clients) and the lease of everything it registers.

    `DistributedRuntime(loop, discovery_backend, request_plane)` connects lazily on first use;
    `await DistributedRuntime.create(...)` connects now.
    """

    def __init__(self, loop: Optional[asyncio.AbstractEventLoop] = None, discovery_backend: Optional[str] = None,
                 request_plane: Optional[str] = None, *, nats_server: Optional[str] = None,
                 file_kv_dir: Optional[str] = None, config: Optional[RuntimeConfig] = None, **overrides):
        self.config = config or RuntimeConfig.resolve(discovery_backend, request_plane, nats_server,
                                                      file_kv_dir, **overrides)
        if self.config.log_level and not logging.getLogger().handlers:   # DYN_LOG; a host's own setup wins
            configure_logging(self.config.log_level)                     # JSON lines with DYN_LOGGING_JSONL=1
        self.instance_id = secrets.randbits(63) or 1
        self.discovery = RuntimeDiscovery(self)
        # the event plane (DYN_EVENT_PLANE): connects on first use, closed by shutdown
        self.events: EventPlane = open_event_plane(self.config, self._events_nats, self.discovery)
        self.dispatcher: Dispatcher = Dispatcher()
        self._backend: Optional[Discovery] = None
        self._nats: Optional["NATS"] = None
        self._nats_connecting: Optional[asyncio.Task] = None
        self._started: Optional[asyncio.Future] = None
        self._server: Optional[PlaneServer] = None
        self._server_transport: Optional[Transport] = None
        self._server_lock: Optional[asyncio.Lock] = None
        self._plane_clients: dict[str, PlaneClient] = {}
        self._clients: list["Client"] = []
        self._graceful = True
        self._system = None
        self._shutdown_started = False
        self._shutdown_done: Optional[asyncio.Event] = None

    @classmethod
    async def create(cls, discovery_backend: Optional[str] = None, request_plane: Optional[str] = None,
                     nats_server: Optional[str] = None, file_kv_dir: Optional[str] = None,
                     **overrides) -> "DistributedRuntime":
        """Build from arguments (None -> environment -> defaults) and connect."""
        runtime = cls(None, discovery_backend, request_plane, nats_server=nats_server,
                      file_kv_dir=file_kv_dir, **overrides)
        await runtime.start()
        return runtime

    # --- lifecycle ----------------------------------------------------------------------
    async def start(self) -> None:
        """Connect discovery (and NATS when used); idempotent."""
        if self._started is None:
            self._started = asyncio.get_running_loop().create_future()
            self._shutdown_done = asyncio.Event()
            try:
                await self._connect()
                self._started.set_result(None)
            except BaseException as exc:
                self._started.set_exception(exc)
                self._started.exception()
                self._started = None
                raise
        else:
            await self._started

    async def _connect(self) -> None:
        cfg = self.config
        if cfg.discovery_backend == "nats" or cfg.request_plane == "nats":
            await self._nats_connection()
        if cfg.discovery_backend == "mem":
            from .discovery.mem import MemDiscovery
            self._backend = MemDiscovery(cfg.mem_scope)
        elif cfg.discovery_backend == "file":
            from .discovery.file import FileDiscovery
            self._backend = FileDiscovery(cfg.file_kv_dir, cfg.discovery_ttl)
        else:
            from .discovery.nats import NatsDiscovery
            self._backend = NatsDiscovery(self._nats, cfg.discovery_ttl, cfg.nats_kv_bucket)
        await self._backend.start()
        if cfg.system_port is not None:
            from .system_server import SystemServer
            self._system = SystemServer(self, cfg.system_port, cfg.system_host)
            self.dispatcher.metrics = self._system.metrics
            await self._system.start()

    async def _nats_connection(self) -> "NATS":
        """The runtime's one NATS connection, opened on first need (concurrent callers share it)."""
        if self._nats is None:
            if self._nats_connecting is None:
                self._nats_connecting = asyncio.get_running_loop().create_task(self._connect_nats())
            try:
                await asyncio.shield(self._nats_connecting)
            except BaseException:
                self._nats_connecting = None
                raise
        return self._nats

    async def _events_nats(self) -> "NATS":
        """The NATS connection of a started runtime (so shutdown closes what the event plane opened)."""
        await self.start()
        return await self._nats_connection()

    async def _connect_nats(self) -> None:
        from .nats_connection import connect_nats
        try:
            self._nats = await connect_nats(self.config.nats_server)
        except Exception as exc:
            raise ConnectError(f"cannot connect to NATS at {self.config.nats_server}: {exc}") from exc

    async def _ensure_server(self) -> Transport:
        """Start this runtime's request-plane server (once) and return its advertised transport."""
        await self.start()
        if self._server_transport is not None:
            return self._server_transport
        if self._server_lock is None:
            self._server_lock = asyncio.Lock()
        async with self._server_lock:
            if self._server_transport is None:
                plane = self.config.request_plane
                if plane == "inproc":
                    from .planes.inproc import InprocServer
                    self._server = InprocServer(self.dispatcher, self.instance_id)
                elif plane == "tcp":
                    from .planes.tcp import TcpServer
                    self._server = TcpServer(self.dispatcher, self.config.tcp_host, self.config.tcp_keepalive)
                else:
                    from .planes.nats import NatsServer
                    self._server = NatsServer(self.dispatcher, await self._nats_connection(), self.instance_id)
                self._server_transport = await self._server.start()
        return self._server_transport

    # --- what endpoints and clients use ---------------------------------------------------
    async def serve(self, path: str, handler: Handler, graceful_shutdown: bool = True,
                    health_check_payload: Any = None, metrics_labels: MetricsLabels = None) -> Transport:
        """Serve `handler` at `path` ("ns.comp.ep") on this runtime's request-plane server, started on
        first use; returns the transport record to advertise in discovery. One endpoint served with
        graceful_shutdown=False makes shutdown skip the drain of in-flight streams."""
        transport = await self._ensure_server()
        self.dispatcher.add(path, handler, health_check_payload, metrics_labels)
        if not graceful_shutdown:
            self._graceful = False
        return transport

    async def plane_client(self, kind: str) -> PlaneClient:
        """The request-plane client for instances advertising transport type `kind` (one per runtime,
        made on first use); ConfigurationError for a type this runtime does not know."""
        client = self._plane_clients.get(kind)
        if client is None:
            if kind == "inproc":
                from .planes.inproc import InprocClient
                client = InprocClient()
            elif kind == "tcp":
                from .planes.tcp import TcpClient
                client = TcpClient(self.config.stream_window, self.config.tcp_keepalive)
            elif kind == "nats":
                from .planes.nats import NatsClient
                nc = await self._nats_connection()
                client = self._plane_clients.get(kind) or NatsClient(nc, self.config.stream_window)
            else:
                raise ConfigurationError(f"instance advertises unknown transport {kind!r}")
            self._plane_clients[kind] = client
        return client

    def close_at_shutdown(self, client: "Client") -> None:
        """Endpoint clients register here: shutdown closes them (their discovery watches) first."""
        self._clients.append(client)

    async def shutdown(self) -> None:
        """Deregister first, drain in-flight streams up to the grace period, then close; idempotent."""
        if self._started is None or self._shutdown_done is None:
            await self.events.close()       # a mem subscription needs no started runtime
            return
        if self._shutdown_started:
            await self._shutdown_done.wait()
            return
        self._shutdown_started = True
        try:
            await self._backend.revoke()      # deregister first: instances and cards this runtime put
            if self._server is not None:
                await self.dispatcher.drain(self.config.grace_period if self._graceful else 0.0)
                await self._server.close()
            await self.events.close()
            for client in self._clients:
                await client.close()
            for plane in self._plane_clients.values():
                await plane.close()
            if self._system is not None:
                await self._system.close()
            await self._backend.close()
            if self._nats is not None:
                try:
                    await asyncio.wait_for(self._nats.close(), 2)
                except Exception:
                    pass
        finally:
            self._shutdown_done.set()

    def is_shutting_down(self) -> bool:
        return self._shutdown_started

    async def wait_for_shutdown(self) -> None:
        await self.start()
        await self._shutdown_done.wait()

    # --- names --------------------------------------------------------------------------
    def namespace(self, name: str) -> "Namespace":
        return Namespace(self, name)

    def endpoint(self, path: str) -> "Endpoint":
        """`runtime.endpoint("ns.comp.ep")`."""
        parts = path.split(".")
        if len(parts) != 3 or not all(parts):
            raise ValueError(f"endpoint path must be 'namespace.component.endpoint', got {path!r}")
        return Endpoint(Component(Namespace(self, parts[0]), parts[1]), parts[2])


class RuntimeDiscovery:
    """`runtime.discovery`: the generic KV for layers above (model cards); keys live on this runtime's lease."""

    def __init__(self, runtime: DistributedRuntime):
        self._runtime = runtime

    async def _backend(self) -> Discovery:
        await self._runtime.start()
        return self._runtime._backend

    async def put(self, key: str, value: dict) -> None:
        await (await self._backend()).put(key, value)

    async def delete(self, key: str) -> None:
        await (await self._backend()).delete(key)

    async def list(self, prefix: str) -> dict[str, dict]:
        return await (await self._backend()).list(prefix)

    async def watch(self, prefix: str) -> AsyncIterator[WatchEvent]:
        backend = await self._backend()
        watcher = backend.watch(prefix)
        try:
            async for event in watcher:
                yield event
        finally:
            await watcher.aclose()

