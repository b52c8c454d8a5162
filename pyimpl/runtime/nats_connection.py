"""One shared NATS connection per runtime, reconnecting forever (survives server restarts)."""
from __future__ import annotations

import logging

import nats
from nats.aio.client import Client as NATS

log = logging.getLogger("pyimpl.runtime.nats")
INITIAL_ATTEMPTS = 8     # a server that is not up yet gets ~2 s; an absent one fails instead of hanging


async def connect_nats(url: str) -> NATS:
    """Connect (bounded first attempts), then reconnect forever; a large pending buffer for streaming."""

    async def on_error(exc: Exception) -> None:
        log.debug("nats error: %s", exc)

    async def on_disconnect() -> None:
        log.info("nats disconnected from %s", url)

    async def on_reconnect() -> None:
        log.info("nats reconnected to %s", url)

    nc = await nats.connect(
        url, max_reconnect_attempts=INITIAL_ATTEMPTS, reconnect_time_wait=0.25, connect_timeout=2,
        allow_reconnect=True, error_cb=on_error, disconnected_cb=on_disconnect,
        reconnected_cb=on_reconnect, pending_size=256 * 1024 * 1024,
    )
    nc.options["max_reconnect_attempts"] = -1    # once connected, never give up on the server
    return nc
