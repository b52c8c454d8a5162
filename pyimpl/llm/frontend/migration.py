"""Request migration (Dynamo's `--migration-limit`): a worker stream that breaks is re-sent to another instance.

When the instance serving a request is lost (connection reset, keepalive timeout, no responders, or the worker
aborting its streams as it shuts down), the request is sent again to an instance it has not failed on, with the
tokens generated so far appended to its prompt and `max_tokens` / `min_tokens` reduced by them. The consumer sees one
unbroken stream of wire chunks: the detokenizer, stop strings and parsers above it never notice the break.
"""
from __future__ import annotations

import asyncio
import logging
import os
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Awaitable, Callable, Optional

from pyimpl.llm.frontend.worker_streams import chunk_data, close_stream, runtime_error
from pyimpl.runtime.errors import DisconnectedError, NoInstancesError, StreamInterruptedError

log = logging.getLogger(__name__)

# Default --migration-limit. Dynamo ships 0 (off); we default to 3 because a request should survive the loss of
# its worker (a crash, an OOM kill, a rolling restart that hits it while the client waits), and a few retries cost
# only a re-prefill each. The limit stays small so that a request that itself kills every worker it reaches (a
# poison prompt) takes down at most 4 of them before it fails with the usual error.
DEFAULT_MIGRATION_LIMIT = 3
MIGRATION_LIMIT_ENV = "DYN_MIGRATION_LIMIT"
INTERRUPTED_BACKOFF_S = 0.25    # first wait before re-sending after a transport interruption; doubles each time

# Runtime failures that mean "the instance (or the stream's messages) is lost", not "the request is bad": these,
# and only these, migrate. After StreamInterruptedError (a NATS reconnect) the instance itself may be fine.
LOST_INSTANCE_ERRORS = (DisconnectedError, NoInstancesError, StreamInterruptedError)

# open(wire request, instance ids to avoid) -> (instance id, runtime response stream)
StreamOpener = Callable[[dict, frozenset], Awaitable[tuple[int, Any]]]
# on_migration(migration_type): "new_request" (broke before its first chunk) or "ongoing_request" (mid-stream)
MigrationListener = Callable[[str], None]


def migration_limit_from_env(default: int = DEFAULT_MIGRATION_LIMIT) -> int:
    """DYN_MIGRATION_LIMIT, else `default`; a value that is not a whole number >= 0 is refused."""
    raw = os.environ.get(MIGRATION_LIMIT_ENV, "").strip()
    if not raw:
        return default
    if not raw.isdigit():
        raise ValueError(f"{MIGRATION_LIMIT_ENV} must be a whole number >= 0, got {raw!r}")
    return int(raw)


def continuation(wire: dict, generated: list[int]) -> dict:
    """The wire request that continues `wire` after `generated`: those tokens join the prompt, the token limits
    shrink by as many (so prompt + output never exceeds what the first request asked for), and the prompt's
    logprobs are not asked for again (they came with the first tokens)."""
    if not generated:
        return wire
    stop = dict(wire.get("stop_conditions") or {})
    if stop.get("max_tokens") is not None:
        stop["max_tokens"] = stop["max_tokens"] - len(generated)
    if stop.get("min_tokens"):
        stop["min_tokens"] = max(0, stop["min_tokens"] - len(generated))
    resent = {**wire, "token_ids": [*wire["token_ids"], *generated], "stop_conditions": stop}
    options = wire.get("output_options")
    if options and options.get("prompt_logprobs") is not None:
        resent["output_options"] = {k: v for k, v in options.items() if k != "prompt_logprobs"}
    return resent


@dataclass
class MigratingStream:
    """One choice's worker stream (iterate `pairs()`), re-opened elsewhere (up to `limit` times) when its instance
    is lost. Errors of the request itself (a worker's error chunk, a handler failure) pass through unchanged; when
    the limit is spent, the last runtime error is raised as it would be without migration."""

    opener: StreamOpener
    wire: dict
    limit: int
    on_migration: Optional[MigrationListener] = None
    generated: list[int] = field(default_factory=list)
    migrations: int = 0
    _instance: int = -1
    _stream: Any = None
    _failed_on: set = field(default_factory=set)
    _chunks: int = 0
    _finished: bool = False

    async def start(self) -> "MigratingStream":
        """Open the first stream (a failure here is the request's own, as without migration)."""
        self._instance, self._stream = await self.opener(self.wire, frozenset())
        return self

    async def pairs(self, index: int = 0) -> AsyncIterator[tuple[int, dict]]:
        """The choice's chunks as (index, chunk data) pairs up to its finish, moved to another instance when its own
        is lost; runtime errors are then mapped once to the serving layer's typed errors (runtime_error). Its end,
        or closing it, closes the worker stream (cancelling it on the worker). One generator per chunk and no
        more: every chunk of every response passes through it."""
        try:
            while not self._finished:
                try:
                    async for item in self._stream:
                        data = item if type(item) is dict else chunk_data(item)     # per chunk: the common case first
                        self._chunks += 1
                        ids, reason = data.get("token_ids"), data.get("finish_reason")
                        if ids:
                            self.generated.extend(ids)
                        if reason is None:
                            yield index, data
                            continue
                        if reason == "abort" and self.migrations < self.limit:
                            if not await self._resume_after_abort():
                                self._finished = True
                                yield index, data   # nowhere to go: the abort reaches the consumer as it would have
                            elif ids:
                                yield index, dict(data, finish_reason=None)
                        else:
                            self._finished = True
                            yield index, data
                        break                       # finished, or the stream moved: re-enter with self._stream
                    else:
                        return                      # the worker stream ended without a finish
                except LOST_INSTANCE_ERRORS as exc:
                    await self._migrate(exc)
        except Exception as exc:
            mapped = runtime_error(exc)
            if mapped is exc:
                raise
            raise mapped from exc
        finally:
            await self.aclose()

    async def _resume_after_abort(self) -> bool:
        """The worker cut the stream short (it is shutting down): continue elsewhere, keeping its tokens; False
        when there is nowhere to go."""
        lost = DisconnectedError(f"instance {self._instance:x} aborted the stream")
        try:
            await self._migrate(lost)
        except DisconnectedError as err:
            if err is not lost:
                raise
            return False
        return True

    async def _migrate(self, exc: BaseException) -> None:
        """Re-send the request, with what was generated, to an instance it has not failed on; re-raise `exc`
        when the limit is spent."""
        await close_stream(self._stream)
        if self.migrations >= self.limit or (self.generated and self.wire.get("guided_decoding")):
            raise exc       # spent; or constrained output, whose grammar state a new worker could not resume
        self.migrations += 1
        if isinstance(exc, StreamInterruptedError):     # the transport, not the instance: give it a moment
            await asyncio.sleep(INTERRUPTED_BACKOFF_S * 2 ** (self.migrations - 1))
        else:
            self._failed_on.add(self._instance)
        kind = "ongoing_request" if self._chunks else "new_request"
        log.warning("migrating request (%s, %d/%d) after %d tokens from instance %x: %s", kind, self.migrations,
                    self.limit, len(self.generated), self._instance, exc)
        if self.on_migration is not None:
            self.on_migration(kind)
        wire = continuation(self.wire, self.generated)
        if (wire.get("stop_conditions") or {}).get("max_tokens", 1) <= 0:   # all tokens arrived, only the end did not
            self._stream = _finished_stream()
            return
        try:
            self._instance, self._stream = await self.opener(wire, frozenset(self._failed_on))
        except NoInstancesError:
            raise exc from None     # nowhere to go: the original loss is what the caller reports

    async def aclose(self) -> None:
        """Close the current worker stream (cancelling it on its worker if still running). Idempotent."""
        if self._stream is not None:
            await close_stream(self._stream)


async def _finished_stream():
    yield {"token_ids": [], "finish_reason": "length"}


async def open_migrating(opener: StreamOpener, wire: dict, limit: int,
                         on_migration: Optional[MigrationListener] = None) -> MigratingStream:
    """A started MigratingStream for `wire` (limit 0: exactly the plain stream, no re-sending)."""
    return await MigratingStream(opener, wire, max(0, limit), on_migration).start()
