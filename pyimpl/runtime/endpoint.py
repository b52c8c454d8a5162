"""The runtime's names: namespace -> component -> endpoint. An endpoint is served with a handler
(registered in discovery with the transport of this runtime's request plane) or reached by a client."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Optional, TypedDict

from .client import Client, Router
from .dispatcher import Handler, MetricsLabels
from .planes import Transport

if TYPE_CHECKING:
    from .runtime import DistributedRuntime

INSTANCE_PREFIX = "instances"   # discovery keys: instances/{ns}/{component}/{endpoint}/{instance_id:x}


class InstanceRecord(TypedDict):
    """The discovery value of one serving instance: what clients need to reach it."""

    namespace: str
    component: str
    endpoint: str
    instance_id: int
    transport: Transport


class Namespace:
    """`runtime.namespace("ns")`: a name only; components hang below it."""

    def __init__(self, runtime: "DistributedRuntime", name: str):
        self.runtime = runtime
        self.name = name

    def component(self, name: str) -> "Component":
        return Component(self, name)


class Component:
    """`ns.component("c")`: a name only; endpoints hang below it."""

    def __init__(self, namespace: Namespace, name: str):
        self.namespace = namespace
        self.runtime = namespace.runtime
        self.name = name

    def endpoint(self, name: str) -> "Endpoint":
        return Endpoint(self, name)

    async def create_service(self) -> None:
        """Accepted for Dynamo compatibility; services need no separate registration here."""
        await self.runtime.start()


class Endpoint:
    """`ns.comp.ep`: serve it with a handler, or get a client for it."""

    def __init__(self, component: Component, name: str):
        self.component = component
        self.runtime = component.runtime
        self.name = name
        ns, comp = component.namespace.name, component.name
        self.path = f"{ns}.{comp}.{name}"
        self.discovery_prefix = f"{INSTANCE_PREFIX}/{ns}/{comp}/{name}/"

    def discovery_key(self, instance_id: int) -> str:
        return f"{self.discovery_prefix}{instance_id:x}"

    async def serve_endpoint(self, handler: Handler, graceful_shutdown: bool = True,
                             metrics_labels: MetricsLabels = None, health_check_payload: Any = None) -> None:
        """Register `handler` (an async generator function) and serve until the runtime shuts down.
        `metrics_labels` ([(name, value)] or a dict) are extra labels on this endpoint's dynamo_component_* metrics."""
        await self.register(handler, graceful_shutdown, health_check_payload, metrics_labels)
        await self.runtime.wait_for_shutdown()

    async def register(self, handler: Handler, graceful_shutdown: bool = True,
                       health_check_payload: Any = None, metrics_labels: MetricsLabels = None) -> None:
        """Start serving without blocking (serve_endpoint = register + wait for shutdown)."""
        runtime = self.runtime
        transport = await runtime.serve(self.path, handler, graceful_shutdown, health_check_payload,
                                        metrics_labels)
        comp = self.component
        record = InstanceRecord(namespace=comp.namespace.name, component=comp.name, endpoint=self.name,
                                instance_id=runtime.instance_id, transport=transport)
        await runtime.discovery.put(self.discovery_key(runtime.instance_id), dict(record))

    async def unregister(self) -> None:
        """Stop serving: this instance leaves discovery first, then new requests are refused here
        (EndpointNotFoundError, which clients treat as a gone instance); streams in flight go on."""
        runtime = self.runtime
        await runtime.discovery.delete(self.discovery_key(runtime.instance_id))
        runtime.dispatcher.remove(self.path)

    async def client(self, router: Optional[Router] = None, timeout: Optional[float] = None) -> Client:
        """A started client; `router(instance_ids, request) -> instance_id` overrides generate()'s policy."""
        await self.runtime.start()
        return await Client(self, router, timeout).start()
