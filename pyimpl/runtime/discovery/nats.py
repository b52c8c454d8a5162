"""NATS discovery: a JetStream key-value bucket with a TTL; expiry markers tell watchers a key died."""
from __future__ import annotations

import asyncio
import json
import logging
import re
from typing import AsyncIterator

import nats.errors
import nats.js.errors
from nats.aio.client import Client as NATS
from nats.js.api import KeyValueConfig

from .base import Discovery, WatchEvent

log = logging.getLogger("pyimpl.runtime.discovery.nats")
_UNSAFE = re.compile(r"[^-_a-zA-Z0-9]")
_ESCAPED = re.compile(r"=([0-9A-F]{2})")


def encode_key(key: str) -> str:
    """`a/b.c` -> `a.b=2Ec`: segments become NATS tokens so prefixes can be subject filters."""
    return ".".join(_UNSAFE.sub(lambda m: "".join(f"={b:02X}" for b in m.group().encode()), seg)
                    for seg in key.split("/"))


def decode_key(token: str) -> str:
    return "/".join(_unescape(segment) for segment in token.split("."))


def _unescape(segment: str) -> str:
    raw = bytearray()
    i = 0
    while i < len(segment):
        if segment[i] == "=" and _ESCAPED.match(segment, i):
            raw.append(int(segment[i + 1:i + 3], 16))
            i += 3
        else:
            raw += segment[i].encode()
            i += 1
    return raw.decode()


class NatsDiscovery(Discovery):
    """Keys in one KV bucket (its TTL is fixed when first created); the owner re-puts every ttl/3."""

    def __init__(self, nc: NATS, ttl: float, bucket: str):
        self.nc = nc
        self.ttl = ttl
        self.bucket = bucket
        self._owned: dict[str, bytes] = {}
        self._kv = None
        self._keepalive: asyncio.Task | None = None
        self._closed = False

    async def _open_bucket(self):
        js = self.nc.jetstream()
        for _ in range(20):
            try:
                return await js.key_value(self.bucket)
            except nats.js.errors.BucketNotFoundError:
                pass
            try:
                return await js.create_key_value(KeyValueConfig(
                    bucket=self.bucket, ttl=self.ttl, limit_marker_ttl=max(self.ttl, 1.0), history=1))
            except nats.js.errors.Error:   # created concurrently by another process
                await asyncio.sleep(0.05)
        raise RuntimeError(f"cannot open NATS KV bucket {self.bucket!r}")

    async def start(self) -> None:
        self._kv = await self._open_bucket()
        self._keepalive = asyncio.get_running_loop().create_task(self._refresh_forever())

    async def close(self) -> None:
        self._closed = True
        if self._keepalive is not None:
            self._keepalive.cancel()
            self._keepalive = None
        await self.revoke()

    def owned_keys(self) -> list[str]:
        return list(self._owned)

    async def delete(self, key: str) -> None:
        self._owned.pop(key, None)
        await asyncio.wait_for(self._kv.delete(encode_key(key)), 2)

    async def _refresh_forever(self) -> None:
        while True:
            await asyncio.sleep(self.ttl / 3)
            for key, data in list(self._owned.items()):
                if key not in self._owned:      # deleted while this round was running
                    continue
                try:
                    await self._kv.put(encode_key(key), data)
                except Exception as exc:   # disconnected, or the bucket was lost: reopen/recreate it
                    log.debug("refresh %s failed: %s", key, exc)
                    self._kv = await self._reopen()

    async def _reopen(self):
        try:
            return await self._open_bucket()
        except Exception:
            return self._kv

    async def put(self, key: str, value: dict) -> None:
        data = json.dumps(value).encode()
        self._owned[key] = data
        await self._kv.put(encode_key(key), data)

    async def list(self, prefix: str) -> dict[str, dict]:
        watcher = await self._kv.watch(self._filter(prefix), ignore_deletes=True)
        found: dict[str, dict] = {}
        try:
            while True:
                entry = await watcher.updates(timeout=5)
                if entry is None:
                    break
                key = decode_key(entry.key)
                if key.startswith(prefix) and entry.value:
                    found[key] = json.loads(entry.value)
        finally:
            await watcher.stop()
        return found

    @staticmethod
    def _filter(prefix: str) -> str:
        if prefix.endswith("/"):
            return encode_key(prefix[:-1]) + ".>"
        return ">"

    async def watch(self, prefix: str) -> AsyncIterator[WatchEvent]:
        """Follows a KV watcher; re-lists every TTL (and after errors) to repair anything missed."""
        known: dict[str, dict] = {}
        while not self._closed:
            try:
                current = await self.list(prefix)
            except Exception as exc:
                _reraise_if_cancelled()
                log.debug("list failed: %s", exc)
                await asyncio.sleep(0.25)
                continue
            _reraise_if_cancelled()
            for event in _diff(known, current):
                yield event
            known = current
            try:
                watcher = await self._kv.watch(self._filter(prefix))
            except Exception as exc:
                _reraise_if_cancelled()
                log.debug("watch failed: %s", exc)
                await asyncio.sleep(0.25)
                continue
            try:
                _reraise_if_cancelled()
                while not self._closed:
                    try:
                        entry = await watcher.updates(timeout=max(self.ttl, 1.0))
                    except nats.errors.TimeoutError:
                        _reraise_if_cancelled()
                        break       # quiet for a TTL: re-list to reconcile
                    _reraise_if_cancelled()
                    if entry is None:
                        continue
                    key = decode_key(entry.key)
                    if not key.startswith(prefix):
                        continue
                    if entry.operation in ("DEL", "PURGE") or not entry.value:
                        if known.pop(key, None) is not None:
                            yield WatchEvent("delete", key, None)
                    else:
                        value = json.loads(entry.value)
                        if known.get(key) != value:
                            known[key] = value
                            yield WatchEvent("put", key, value)
            finally:
                try:
                    await watcher.stop()
                except Exception:
                    pass


def _reraise_if_cancelled() -> None:
    """nats-py sometimes turns a cancellation into its own error: do not swallow it."""
    task = asyncio.current_task()
    if task is not None and getattr(task, "cancelling", lambda: 0)():
        raise asyncio.CancelledError


def _diff(old: dict[str, dict], new: dict[str, dict]):
    for key, value in new.items():
        if old.get(key) != value:
            yield WatchEvent("put", key, value)
    for key in old:
        if key not in new:
            yield WatchEvent("delete", key, None)
