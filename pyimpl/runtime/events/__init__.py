"""The runtime's event plane (DYN_EVENT_PLANE = mem | nats | zmq): subjects fanned out to subscribers."""
from __future__ import annotations

from typing import TYPE_CHECKING, Awaitable, Callable

from .base import EventCallback, EventPlane, Unsubscribe, matches

if TYPE_CHECKING:
    from nats.aio.client import Client as NATS

    from ..config import RuntimeConfig
    from ..runtime import RuntimeDiscovery

__all__ = ["EventCallback", "EventPlane", "Unsubscribe", "matches", "open_event_plane"]


def open_event_plane(config: "RuntimeConfig", nats: Callable[[], Awaitable["NATS"]],
                     discovery: "RuntimeDiscovery") -> EventPlane:
    """The plane `config` names (its default when none); connections are made on first publish/subscribe."""
    kind = config.event_plane or config.default_event_plane()
    if kind == "nats":
        from .nats import NatsEventPlane
        return NatsEventPlane(nats)
    if kind == "zmq":
        from .zmq import ZmqEventPlane
        return ZmqEventPlane(discovery, config.tcp_host)
    from .mem import MemEventPlane
    return MemEventPlane(config.mem_scope)
