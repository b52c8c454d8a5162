"""In-process discovery: a dict shared by every runtime in this process."""
from __future__ import annotations

from typing import AsyncIterator

from .base import Discovery, WatchEvent, WatchQueue


class _MemStore:
    """Process-wide key/value store with watchers."""

    def __init__(self) -> None:
        self.values: dict[str, dict] = {}
        self.watchers: set[WatchQueue] = set()

    def put(self, key: str, value: dict) -> None:
        self.values[key] = value
        self._notify(WatchEvent("put", key, value))

    def delete(self, key: str) -> None:
        if self.values.pop(key, None) is not None:
            self._notify(WatchEvent("delete", key, None))

    def _notify(self, event: WatchEvent) -> None:
        for watcher in list(self.watchers):
            watcher.offer(event)


STORE = _MemStore()


class MemDiscovery(Discovery):
    """Keys live in STORE; the lease is this object: close() deletes what it put."""

    def __init__(self) -> None:
        self._owned: set[str] = set()

    def owned_keys(self) -> list[str]:
        return list(self._owned)

    async def put(self, key: str, value: dict) -> None:
        self._owned.add(key)
        STORE.put(key, value)

    async def delete(self, key: str) -> None:
        self._owned.discard(key)
        STORE.delete(key)

    async def list(self, prefix: str) -> dict[str, dict]:
        return {k: v for k, v in STORE.values.items() if k.startswith(prefix)}

    async def watch(self, prefix: str) -> AsyncIterator[WatchEvent]:
        watcher = WatchQueue(prefix)
        STORE.watchers.add(watcher)
        try:
            for key, value in list(STORE.values.items()):
                if key.startswith(prefix):
                    yield WatchEvent("put", key, value)
            while True:
                yield await watcher.queue.get()
        finally:
            STORE.watchers.discard(watcher)
