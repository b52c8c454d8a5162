"""The conversation store behind previous_response_id, GET and DELETE /v1/responses/{id}: in memory (bounded,
oldest first out) by default, or a SQLite file that survives a restart (`--responses-store PATH`)."""
from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Protocol

import msgspec

from pyimpl.llm.errors import ServingError

DEFAULT_MEMORY_CAPACITY = 10_000
DEFAULT_MEMORY_BYTES = 256 << 20


class ResponseNotFoundError(ServingError):
    """No stored response has this id (HTTP 404)."""

    status = 404
    error_type = "invalid_request_error"
    code = "response_not_found"


@dataclass
class StoredResponse:
    """A finished response and the conversation items up to and including its output (instructions excluded)."""

    response: dict
    items: list[dict]


class ResponseStore(Protocol):
    """Where stored responses live; ids are unique response ids."""

    async def get(self, response_id: str) -> StoredResponse | None: ...
    async def put(self, record: StoredResponse) -> None: ...
    async def delete(self, response_id: str) -> bool: ...


async def require(store: ResponseStore, response_id: str, param: str | None = None) -> StoredResponse:
    """The stored response, else ResponseNotFoundError."""
    record = await store.get(response_id)
    if record is None:
        raise ResponseNotFoundError(f"Response with id '{response_id}' not found.", param)
    return record


class MemoryResponseStore:
    """Responses in this process's memory: past `capacity` records or `max_bytes` of them (each record holds its
    whole conversation, so long ones are large) the oldest are dropped; nothing grows unbounded."""

    def __init__(self, capacity: int = DEFAULT_MEMORY_CAPACITY, max_bytes: int = DEFAULT_MEMORY_BYTES):
        self.capacity, self.max_bytes = capacity, max_bytes
        self._records: OrderedDict[str, bytes] = OrderedDict()
        self.bytes = 0

    async def get(self, response_id: str) -> StoredResponse | None:
        data = self._records.get(response_id)
        return None if data is None else msgspec.json.decode(data, type=StoredResponse)

    async def put(self, record: StoredResponse) -> None:
        await self.delete(record.response["id"])
        data = msgspec.json.encode(record)
        self._records[record.response["id"]] = data
        self.bytes += len(data)
        while len(self._records) > self.capacity or (self.bytes > self.max_bytes and len(self._records) > 1):
            self.bytes -= len(self._records.popitem(last=False)[1])

    async def delete(self, response_id: str) -> bool:
        data = self._records.pop(response_id, None)
        self.bytes -= len(data or b"")
        return data is not None


class SQLiteResponseStore:
    """Responses in a SQLite file (WAL); calls run off the event loop, one connection behind a lock."""

    def __init__(self, path: str):
        self.path = path
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS responses (id TEXT PRIMARY KEY, record BLOB NOT NULL, "
                         "created_at INTEGER NOT NULL)")

    def _run(self, sql: str, args: tuple) -> tuple[list, int]:
        """Rows and rowcount of one statement (read under the lock: the connection is shared)."""
        with self._lock:
            cursor = self._db.execute(sql, args)
            return cursor.fetchall(), cursor.rowcount

    async def get(self, response_id: str) -> StoredResponse | None:
        rows, _ = await asyncio.to_thread(self._run, "SELECT record FROM responses WHERE id = ?", (response_id,))
        return msgspec.json.decode(rows[0][0], type=StoredResponse) if rows else None

    async def put(self, record: StoredResponse) -> None:
        await asyncio.to_thread(self._run, "INSERT OR REPLACE INTO responses VALUES (?, ?, ?)",
                                (record.response["id"], msgspec.json.encode(record), record.response["created_at"]))

    async def delete(self, response_id: str) -> bool:
        _, count = await asyncio.to_thread(self._run, "DELETE FROM responses WHERE id = ?", (response_id,))
        return count > 0

    def close(self) -> None:
        with self._lock:
            self._db.close()


def open_store(path: str | None) -> MemoryResponseStore | SQLiteResponseStore:
    """The store for `--responses-store PATH` (None: in memory)."""
    return SQLiteResponseStore(path) if path else MemoryResponseStore()
