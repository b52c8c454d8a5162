"""Endpoints served by a C handler (capi/src/endpoint_serve.c): a runtime endpoint whose handler hands each
request to C (one responder per request) and streams back what the host sends, until it finishes.

The host's answers arrive as outbox events on the loop thread (`on_send`, `on_finish`); a client that goes
away closes the handler, which marks the responder cancelled in C (dynamo_responder_is_cancelled)."""
from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, AsyncIterator, Optional, Protocol

import msgspec

from pyimpl.capi.status import ERR_INVALID_ARGUMENT, ERR_INVALID_HANDLE, CapiError
from pyimpl.llm.model_card import ModelCard, card_key

if TYPE_CHECKING:
    from pyimpl.runtime import DistributedRuntime, Endpoint

CARD_KEYS = {"name": str, "model_path": str, "context_length": int, "kv_block_size": int, "eos_token_ids": list,
             "model_type": str, "tool_call_parser": str, "reasoning_parser": str}
MODEL_TYPES = ("chat", "completions")
_END = object()


class ServeOps(Protocol):
    """What the Python side needs from endpoint_serve.c (or a test double)."""

    def dispatch(self, server: int, request: bytes) -> int: ...
    def cancel(self, responder: int) -> None: ...
    def set_grace_ms(self, server: int, ms: int) -> None: ...


class HostEngineError(Exception):
    """The C host finished a response with an error message (the client's stream fails with it)."""


@dataclass
class CServer:
    """One live C server: where it serves and the card it published."""

    runtime: DistributedRuntime
    endpoint: Endpoint
    card_key: Optional[str] = None


class CServedEndpoints:
    """Every C server of the process by handle, and the response queue of every open responder."""

    def __init__(self, ops: ServeOps):
        self.ops = ops
        self.servers: dict[int, CServer] = {}
        self.queues: dict[int, asyncio.Queue] = {}

    async def serve(self, runtime: DistributedRuntime, server: int, path: str) -> None:
        """Register `path` on `runtime` with a handler forwarding to C server `server`."""
        try:
            endpoint = runtime.endpoint(path)
        except ValueError as exc:
            raise CapiError(ERR_INVALID_ARGUMENT, f"bad endpoint path {path!r}: {exc}") from None
        if runtime.dispatcher.serves(path):
            raise CapiError(ERR_INVALID_ARGUMENT, f"this runtime already serves {path!r}")
        self.ops.set_grace_ms(server, int(runtime.config.grace_period * 1000))
        self.servers[server] = CServer(runtime, endpoint)
        try:
            await endpoint.register(self._handler(server))
        except BaseException:
            self.servers.pop(server, None)
            raise

    def _handler(self, server: int):
        ops, queues = self.ops, self.queues

        async def c_handler(request: Any, context: Any = None) -> AsyncIterator[Any]:
            responder = ops.dispatch(server, msgspec.json.encode(request))
            if not responder:
                raise HostEngineError("the endpoint is stopping")
            queue: asyncio.Queue = asyncio.Queue()
            queues[responder] = queue
            finished = False
            stop_watch = None
            if context is not None:  # a stop_generating() of the request: the host sees is_cancelled
                stop_watch = asyncio.ensure_future(_cancel_when_stopped(context, ops, responder))
            try:
                while True:
                    item = await queue.get()
                    if item is _END:
                        finished = True
                        return
                    if isinstance(item, HostEngineError):
                        finished = True
                        raise item
                    yield item
            finally:
                queues.pop(responder, None)
                if stop_watch is not None:
                    stop_watch.cancel()
                if not finished:
                    ops.cancel(responder)  # the client went away: the host sees is_cancelled
        return c_handler

    def on_send(self, responder: int, data: bytes) -> None:
        """A response the host sent (already checked to be a JSON object in C)."""
        queue = self.queues.get(responder)
        if queue is not None:
            queue.put_nowait(msgspec.json.decode(data))

    def on_finish(self, responder: int, error: Optional[bytes]) -> None:
        """The host finished the response (error: its message), or C gave up on it at a stop."""
        queue = self.queues.get(responder)
        if queue is not None:
            queue.put_nowait(_END if error is None else HostEngineError(error.decode(errors="replace")))

    async def register_card(self, server: int, card_json: str) -> None:
        """Publish the model card of a C server's endpoint (withdrawn by stop)."""
        served = self.servers.get(server)
        if served is None:
            raise CapiError(ERR_INVALID_HANDLE, "invalid server handle")
        if served.card_key is not None:
            raise CapiError(ERR_INVALID_ARGUMENT, "this server already published a model card")
        card = parse_card(card_json, served.endpoint.path)
        key = card_key(card.name, served.runtime.instance_id)
        await served.runtime.discovery.put(key, card.to_dict())
        served.card_key = key

    async def stop(self, server: int) -> Optional[Any]:
        """Withdraw the card and the instance (no new requests); returns the runtime it served on."""
        served = self.servers.pop(server, None)
        if served is None:
            return None
        if not served.runtime.is_shutting_down():
            if served.card_key is not None:
                await served.runtime.discovery.delete(served.card_key)
            await served.endpoint.unregister()
        return served

    def path_of(self, server: int) -> Optional[str]:
        served = self.servers.get(server)
        return served.endpoint.path if served is not None else None


async def _cancel_when_stopped(context: Any, ops: ServeOps, responder: int) -> None:
    await context.stopped()
    ops.cancel(responder)


def parse_card(card_json: str, endpoint: str) -> ModelCard:
    """A ModelCard from dynamo_model_register's JSON (keys checked; CapiError INVALID_ARGUMENT says why)."""
    try:
        raw = msgspec.json.decode(card_json)
    except msgspec.DecodeError as exc:
        raise CapiError(ERR_INVALID_ARGUMENT, f"card_json is not valid JSON: {exc}") from None
    for key, value in raw.items():
        kind = CARD_KEYS.get(key)
        if kind is None:
            raise CapiError(ERR_INVALID_ARGUMENT, f'card_json: unknown key "{key}" (known: {", ".join(CARD_KEYS)})')
        if not isinstance(value, kind) or isinstance(value, bool):
            raise CapiError(ERR_INVALID_ARGUMENT, f'card_json: "{key}" must be a {kind.__name__}')
    for key in ("name", "model_path"):
        if not raw.get(key):
            raise CapiError(ERR_INVALID_ARGUMENT, f'card_json: "{key}" is required')
    if raw.get("model_type", "chat") not in MODEL_TYPES:
        raise CapiError(ERR_INVALID_ARGUMENT, f'card_json: "model_type" must be one of {", ".join(MODEL_TYPES)}')
    for key in ("context_length", "kv_block_size"):
        if key in raw and raw[key] <= 0:
            raise CapiError(ERR_INVALID_ARGUMENT, f'card_json: "{key}" must be positive')
    if not all(isinstance(t, int) and not isinstance(t, bool) and t >= 0 for t in raw.get("eos_token_ids", [])):
        raise CapiError(ERR_INVALID_ARGUMENT, 'card_json: "eos_token_ids" must be a list of token ids')
    return ModelCard(endpoint=endpoint, **raw)
