"""The seam between a worker's endpoint handlers and an engine: what the torch, mock and embedding engines offer.

`model_server` talks to engines only through these Protocols, so a new engine (a C++ one behind the C ABI,
a remote one) plugs in by implementing them; nothing probes engines with hasattr.
"""
from __future__ import annotations

from typing import Any, AsyncIterator, Callable, Protocol, runtime_checkable

from pyimpl.llm.engine.kv_events import KvEvent
from pyimpl.llm.engine.outputs import EngineStats, RequestOutput


@runtime_checkable
class ServingEngine(Protocol):
    """Facts and lifecycle every engine a worker serves shares."""

    @property
    def eos_token_ids(self) -> list[int]: ...

    @property
    def max_model_len(self) -> int: ...

    @property
    def block_size(self) -> int: ...

    def stats(self) -> EngineStats: ...

    async def shutdown(self) -> None: ...


@runtime_checkable
class GenerateEngine(ServingEngine, Protocol):
    """A token-generating engine (torch or mock): streams RequestOutput deltas for one request."""

    @property
    def vocab_size(self) -> int: ...

    @property
    def abort_count(self) -> int: ...

    def make_params(self, wire: dict) -> Any:
        """This engine's sampling parameters from the worker wire format's `sampling` dict; raises
        EngineRequestError (400) naming an unknown or invalid field."""

    def generate(self, prompt_token_ids: list[int], params: Any, request_id: str) -> AsyncIterator[RequestOutput]: ...

    async def abort(self, request_id: str) -> None: ...

    def subscribe_kv_events(self, callback: Callable[[KvEvent], None]) -> Callable[[], None]:
        """Call `callback` for every KV event (stored/removed/cleared); returns the unsubscribe function."""


@runtime_checkable
class EmbedEngine(ServingEngine, Protocol):
    """An embedding engine: one request in, one reply out."""

    def handler(self, request: dict, context: Any = None) -> AsyncIterator[dict]: ...
