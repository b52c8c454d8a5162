"""The seam between a worker's endpoint handlers and an engine: what the torch, mock and embedding engines offer.

`model_server` talks to engines only through these Protocols, so a new engine (a C++ one behind the C ABI,
a remote one) plugs in by implementing them; nothing probes engines with hasattr.
"""
from __future__ import annotations

from typing import Any, AsyncIterator, Callable, Protocol, runtime_checkable

from pyimpl.llm.engine.kv_events import KvEvent
from pyimpl.llm.engine.outputs import RequestOutput


class Stats(Protocol):
    """An engine's load figures: a dataclass (EngineStats or a lookalike); the worker's `stats` endpoint answers
    its fields as one dict."""

    num_running: int


class WireContext(Protocol):
    """What a handler uses of the runtime's per-request Context."""

    def id(self) -> str: ...

    def is_stopped(self) -> bool: ...


# A runtime endpoint handler: a wire request (and its Context) in, wire response chunks out.
Handler = Callable[[dict, Any], AsyncIterator[dict]]


@runtime_checkable
class ServingEngine(Protocol):
    """Facts and lifecycle every engine a worker serves shares (they go on the model card and the stats endpoint)."""

    @property
    def eos_token_ids(self) -> list[int]: ...

    @property
    def max_model_len(self) -> int: ...

    @property
    def block_size(self) -> int:
        """KV block size in tokens (0: the engine keeps no KV cache, e.g. an embedding model)."""

    @property
    def abort_count(self) -> int:
        """Requests aborted so far (a client closed its stream before the end)."""

    def stats(self) -> Stats: ...

    async def shutdown(self) -> None: ...


@runtime_checkable
class GenerateEngine(ServingEngine, Protocol):
    """A token-generating engine (torch or mock): streams RequestOutput deltas for one request."""

    @property
    def vocab_size(self) -> int: ...

    def make_params(self, wire: dict) -> Any:
        """This engine's sampling parameters from a worker wire request (its `sampling_options`, `stop_conditions`
        and `output_options`); raises EngineRequestError (400) naming an unknown or invalid field."""

    def generate(self, prompt_token_ids: list[int], params: Any, request_id: str) -> AsyncIterator[RequestOutput]:
        """Deltas until the last one, which has `finished`; closing the iterator early aborts the request."""

    async def abort(self, request_id: str) -> None: ...

    def subscribe_kv_events(self, callback: Callable[[KvEvent], None]) -> Callable[[], None]:
        """Call `callback` for every KV event (stored/removed/cleared); returns the unsubscribe function."""


@runtime_checkable
class EmbedEngine(ServingEngine, Protocol):
    """An embedding engine: one request `{"input": [texts]}` in, one `{"embeddings", "prompt_tokens"}` chunk out."""

    def handler(self, request: dict, context: Any = None) -> AsyncIterator[dict]: ...
