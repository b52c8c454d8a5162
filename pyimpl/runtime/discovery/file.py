"""File discovery: one JSON file per key in a shared directory; the owner refreshes mtime, readers drop stale keys."""
from __future__ import annotations

import asyncio
import json
import os
import time
from typing import AsyncIterator

from .base import Discovery, WatchEvent

POLL_INTERVAL = 0.1
SUFFIX = ".json"


class FileDiscovery(Discovery):
    """A key `a/b/c` is the file `<root>/a/b/c.json` holding {"ttl": s, "value": {...}}.

    A key is alive while now < mtime + ttl; the owner touches its files every ttl/3.
    Readers ignore expired files and remove them.
    """

    def __init__(self, root: str, ttl: float):
        self.root = os.path.abspath(root)
        self.ttl = ttl
        self._owned: dict[str, dict] = {}  # this process's live keys and their values (to re-create them)
        self._keepalive: asyncio.Task | None = None
        os.makedirs(self.root, exist_ok=True)

    def _path(self, key: str) -> str:
        return os.path.join(self.root, *key.split("/")) + SUFFIX

    async def start(self) -> None:
        self._keepalive = asyncio.get_running_loop().create_task(self._refresh_forever())

    async def close(self) -> None:
        if self._keepalive is not None:
            self._keepalive.cancel()
            self._keepalive = None
        await self.revoke()

    def owned_keys(self) -> list[str]:
        return list(self._owned)

    async def _refresh_forever(self) -> None:
        while True:
            await asyncio.sleep(self.ttl / 3)
            for key, value in list(self._owned.items()):
                try:
                    os.utime(self._path(key))
                except FileNotFoundError:
                    # another process's reader removed it as expired (this loop was stalled past the TTL):
                    # the key is still ours, so it comes back rather than vanishing for good
                    if key in self._owned:
                        self._write(key, value)

    async def put(self, key: str, value: dict) -> None:
        self._write(key, value)
        self._owned[key] = value

    def _write(self, key: str, value: dict) -> None:
        path = self._path(key)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "w") as f:
            json.dump({"ttl": self.ttl, "value": value}, f)
        os.replace(tmp, path)

    async def delete(self, key: str) -> None:
        self._owned.pop(key, None)
        try:
            os.remove(self._path(key))
        except FileNotFoundError:
            pass

    def _scan(self, prefix: str) -> dict[str, tuple[float, dict]]:
        """Alive keys under prefix -> (mtime, value); expired files are removed."""
        found: dict[str, tuple[float, dict]] = {}
        base = self.root
        now = time.time()
        start = os.path.join(base, *prefix.split("/")[:-1]) if "/" in prefix else base
        for dirpath, _dirs, files in os.walk(start):
            for name in files:
                if not name.endswith(SUFFIX):
                    continue
                path = os.path.join(dirpath, name)
                key = os.path.relpath(path, base)[: -len(SUFFIX)].replace(os.sep, "/")
                if not key.startswith(prefix):
                    continue
                try:
                    mtime = os.stat(path).st_mtime
                    with open(path) as f:
                        record = json.load(f)
                except (FileNotFoundError, json.JSONDecodeError):
                    continue
                if now > mtime + float(record.get("ttl", self.ttl)):
                    if key not in self._owned:
                        try:
                            os.remove(path)
                        except FileNotFoundError:
                            pass
                    continue
                found[key] = (mtime, record["value"])
        return found

    async def list(self, prefix: str) -> dict[str, dict]:
        return {k: v for k, (_, v) in self._scan(prefix).items()}

    async def watch(self, prefix: str) -> AsyncIterator[WatchEvent]:
        known: dict[str, dict] = {}
        while True:
            current = {k: v for k, (_, v) in self._scan(prefix).items()}
            for key, value in current.items():
                if known.get(key) != value:
                    yield WatchEvent("put", key, value)
            for key in [k for k in known if k not in current]:
                yield WatchEvent("delete", key, None)
            known = current
            await asyncio.sleep(POLL_INTERVAL)
