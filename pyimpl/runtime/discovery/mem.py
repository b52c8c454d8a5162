"""In-process discovery: a dict shared by the runtimes of one scope in this process (the default
scope "" by every runtime that names none; the C ABI gives each runtime its own)."""
from __future__ import annotations

import weakref
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
# scope -> store, alive while a MemDiscovery of that scope is (the default scope's for good)
_SCOPES: "weakref.WeakValueDictionary[str, _MemStore]" = weakref.WeakValueDictionary({"": STORE})


def _store(scope: str) -> _MemStore:
    store = _SCOPES.get(scope)
    if store is None:
        store = _SCOPES[scope] = _MemStore()
    return store


class MemDiscovery(Discovery):
    """Keys live in the scope's store; the lease is this object: close() deletes what it put."""

    def __init__(self, scope: str = "") -> None:
        self._owned: set[str] = set()
        self._store = _store(scope)

    def owned_keys(self) -> list[str]:
        return list(self._owned)

    async def put(self, key: str, value: dict) -> None:
        self._owned.add(key)
        self._store.put(key, value)

    async def delete(self, key: str) -> None:
        self._owned.discard(key)
        self._store.delete(key)

    async def list(self, prefix: str) -> dict[str, dict]:
        return {k: v for k, v in self._store.values.items() if k.startswith(prefix)}

    async def watch(self, prefix: str) -> AsyncIterator[WatchEvent]:
        watcher = WatchQueue(prefix)
        self._store.watchers.add(watcher)
        try:
            for key, value in list(self._store.values.items()):
                if key.startswith(prefix):
                    yield WatchEvent("put", key, value)
            while True:
                yield await watcher.queue.get()
        finally:
            self._store.watchers.discard(watcher)
