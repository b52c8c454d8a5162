"""The discovery interface: a key/value store whose keys belong to the runtime's lease."""
from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import AsyncIterator, Optional


@dataclass
class WatchEvent:
    """A change under a watched prefix: kind is "put" or "delete"."""

    kind: str
    key: str
    value: Optional[dict]


class Discovery:
    """Backend interface. Keys put here are owned by this runtime and vanish with it (TTL)."""

    async def start(self) -> None:
        """Connect / start lease keep-alive."""

    async def revoke(self) -> None:
        """Delete every key this runtime put (its lease ends); the backend stays usable."""
        for key in list(self.owned_keys()):
            try:
                await self.delete(key)
            except Exception:   # unreachable store: the TTL removes the key
                pass

    def owned_keys(self) -> list[str]:
        return []

    async def close(self) -> None:
        """Revoke the lease (delete owned keys) and stop keep-alive."""
        await self.revoke()

    async def put(self, key: str, value: dict) -> None:
        raise NotImplementedError

    async def delete(self, key: str) -> None:
        raise NotImplementedError

    async def list(self, prefix: str) -> dict[str, dict]:
        raise NotImplementedError

    def watch(self, prefix: str) -> AsyncIterator[WatchEvent]:
        """Existing keys first (as "put"), then changes, until the iterator is closed."""
        raise NotImplementedError


class WatchQueue:
    """Fan-out helper: a watcher's event queue filtered by prefix."""

    __slots__ = ("prefix", "queue")

    def __init__(self, prefix: str):
        self.prefix = prefix
        self.queue: asyncio.Queue[WatchEvent] = asyncio.Queue()

    def offer(self, event: WatchEvent) -> None:
        if event.key.startswith(self.prefix):
            self.queue.put_nowait(event)
