"""The event plane's interface: fire-and-forget messages on subjects, fanned out to every subscriber
(workers' KV events and load for a router). No delivery guarantee: a late subscriber asks for a snapshot."""
from __future__ import annotations

import logging
from typing import Awaitable, Callable, Protocol

log = logging.getLogger("pyimpl.runtime.events")

EventCallback = Callable[[str, bytes], None]
"""Called on the subscribing runtime's event loop with (subject, data), in each publisher's order;
it must not block (hand long work to a task). An exception is logged and delivery goes on."""
Unsubscribe = Callable[[], Awaitable[None]]


class EventPlane(Protocol):
    """Publish bytes on a subject; subscribers to that subject (or a pattern covering it) receive them.

    Subjects are dot-separated tokens ("ns.component.kv_events"). A subscription names a subject exactly,
    or ends in ".*" (exactly one more token) or ".>" (one or more tokens), as NATS patterns do."""

    async def publish(self, subject: str, data: bytes) -> None:
        """Send `data` to the current subscribers of `subject`; never waits for them."""
        ...

    async def subscribe(self, subject: str, callback: EventCallback) -> Unsubscribe:
        """Deliver messages of `subject` (or pattern) to `callback` until the returned coroutine
        function is awaited (idempotent) or the plane closes."""
        ...

    async def close(self) -> None:
        """Stop delivering and release sockets/subscriptions; idempotent."""
        ...


def check_subject(subject: str, pattern: bool = False) -> None:
    """ValueError for an empty token, whitespace, or a wildcard where none may be."""
    tokens = subject.split(".")
    for i, token in enumerate(tokens):
        if not token or any(c.isspace() for c in token):
            raise ValueError(f"invalid event subject {subject!r}")
        if token in ("*", ">") or "*" in token or ">" in token:
            if not pattern or i != len(tokens) - 1 or token not in ("*", ">") or len(tokens) < 2:
                raise ValueError(f"invalid event subject {subject!r}: a wildcard may only be a "
                                 f"trailing '.*' or '.>' of a subscription")


def matches(pattern: str, subject: str) -> bool:
    """Whether `subject` falls under the subscription `pattern` (exact, trailing '.*' or '.>')."""
    if pattern.endswith(".>"):
        stem = pattern[:-1]
        return subject.startswith(stem) and len(subject) > len(stem)
    if pattern.endswith(".*"):
        stem = pattern[:-1]
        return subject.startswith(stem) and len(subject) > len(stem) and "." not in subject[len(stem):]
    return pattern == subject


def pattern_prefix(pattern: str) -> str:
    """The literal start every subject under `pattern` shares (for prefix filters such as zmq's)."""
    return pattern[:-1] if pattern.endswith((".*", ".>")) else pattern


def deliver(callback: EventCallback, subject: str, data: bytes) -> None:
    """Run a subscriber's callback, logging (not raising) what it throws."""
    try:
        callback(subject, data)
    except Exception:
        log.exception("event subscriber for %s failed", subject)
