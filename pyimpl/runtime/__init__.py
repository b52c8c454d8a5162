"""Distributed runtime: named endpoints serving async streams in one process, across processes
(tcp + file discovery) or across machines (NATS). Knows nothing about LLMs."""
from .annotated import Annotated
from .client import Client
from .context import Context
from .discovery.base import WatchEvent
from .endpoint import Component, Endpoint, Namespace
from .runtime import DistributedRuntime
from .worker import dynamo_worker

__all__ = ["Annotated", "Client", "Component", "Context", "DistributedRuntime", "Endpoint",
           "Namespace", "WatchEvent", "dynamo_worker"]
