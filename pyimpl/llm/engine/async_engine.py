"""Asyncio front of the engine: a dedicated thread runs the torch steps, callers stream deltas per request."""
from __future__ import annotations

import asyncio
import queue
import threading
import uuid
from dataclasses import dataclass
from typing import AsyncIterator, Callable

from pyimpl.llm.errors import EngineRequestError

from .engine import Engine
from .kv_events import KvEvent
from .outputs import EngineStats, RequestOutput
from .sampling_params import SamplingParams
from .wire_params import wire_fields


def params_from_wire(wire: dict) -> SamplingParams:
    """SamplingParams from a wire request; unknown fields and invalid values raise EngineRequestError."""
    fields = wire_fields(wire)
    try:
        return SamplingParams(**fields)
    except (TypeError, ValueError) as e:
        raise EngineRequestError(str(e)) from None


@dataclass
class _Stream:
    """Where one request's outputs go: an asyncio queue on the caller's loop."""

    loop: asyncio.AbstractEventLoop
    queue: asyncio.Queue


class AsyncEngine:
    """Runs `Engine.step()` on its own thread so the caller's event loop never blocks on torch."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._commands: queue.SimpleQueue = queue.SimpleQueue()
        self._streams: dict[str, _Stream] = {}
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name="engine-loop", daemon=True)
        self._thread.start()

    @classmethod
    def from_pretrained(cls, path: str, **engine_kwargs) -> "AsyncEngine":
        """Same keyword arguments as Engine.from_pretrained."""
        return cls(Engine.from_pretrained(path, **engine_kwargs))

    # ---- engine facts
    @property
    def eos_token_ids(self) -> list[int]:
        return self.engine.eos_token_ids

    @property
    def max_model_len(self) -> int:
        return self.engine.max_model_len

    @property
    def vocab_size(self) -> int:
        return self.engine.vocab_size

    @property
    def block_size(self) -> int:
        return self.engine.block_size

    @property
    def abort_count(self) -> int:
        return self.engine.abort_count

    def stats(self) -> EngineStats:
        return self.engine.stats()

    def subscribe_kv_events(self, callback: Callable[[KvEvent], None]) -> Callable[[], None]:
        """`callback` runs on the engine thread; hop to your loop with call_soon_threadsafe if needed."""
        return self.engine.subscribe_kv_events(callback)

    def make_params(self, wire: dict) -> SamplingParams:
        """This engine's parameters for a worker wire request (engine_api.GenerateEngine)."""
        return params_from_wire(wire)

    # ---- requests
    async def generate(self, prompt_token_ids: list[int], params: SamplingParams | dict | None = None,
                       request_id: str | None = None) -> AsyncIterator[RequestOutput]:
        """Stream RequestOutput deltas; the last has `finished`. Leaving early aborts the request and frees its KV.

        With params.n > 1 the deltas of all choices interleave (RequestOutput.index); the stream ends once every
        choice has finished (or the request is aborted)."""
        if self._stopped:
            raise RuntimeError("AsyncEngine is shut down")
        request_id = request_id or uuid.uuid4().hex
        try:  # the caller's request is refused here, in the caller (a 400 when it came over the wire)
            params = self.engine.validate_request(prompt_token_ids, params)
        except ValueError as e:
            raise EngineRequestError(str(e)) from None
        if request_id in self._streams:
            raise ValueError(f"request_id {request_id!r} is already in use")
        stream = _Stream(asyncio.get_running_loop(), asyncio.Queue())
        self._streams[request_id] = stream
        self._commands.put(("add", request_id, list(prompt_token_ids), params))
        finished = False
        done_choices: set[int] = set()
        try:
            while True:
                item = await stream.queue.get()
                if isinstance(item, BaseException):
                    finished = True
                    raise item
                if item.finished:
                    done_choices.add(item.index)
                finished = len(done_choices) == params.n or item.finish_reason == "abort"
                yield item
                if finished:
                    return
        finally:
            if not finished:
                self._commands.put(("abort", request_id))
            else:
                self._streams.pop(request_id, None)

    async def abort(self, request_id: str) -> None:
        """Abort a request by id; its stream ends with finish_reason "abort"."""
        self._commands.put(("abort", request_id))
        await self.barrier()

    async def barrier(self) -> None:
        """Resolve once the engine thread has applied every command queued before this call."""
        done = asyncio.get_running_loop().create_future()
        self._commands.put(("barrier", done))
        await done

    async def shutdown(self) -> None:
        """Stop the engine thread; running requests end with finish_reason "abort"."""
        if self._stopped:
            return
        self._stopped = True
        self._commands.put(("stop",))
        await asyncio.get_running_loop().run_in_executor(None, self._thread.join)

    # ---- engine thread
    def _run(self) -> None:
        engine = self.engine
        while True:
            block = not engine.has_unfinished_requests()
            try:
                while True:
                    cmd = self._commands.get(block=block)
                    block = False
                    if not self._apply(cmd):
                        self._abort_all()
                        return
            except queue.Empty:
                pass
            if engine.has_unfinished_requests():
                try:
                    outputs = engine.step()
                except Exception as exc:  # a failed step fails every request, the loop stays up
                    self._fail_all(exc)
                    continue
                self._deliver(outputs)

    def _apply(self, cmd) -> bool:
        kind = cmd[0]
        if kind == "add":
            _, request_id, prompt, params = cmd
            try:
                self.engine.add_request(request_id, prompt, params)
            except Exception as exc:
                self._deliver_to(request_id, exc)
        elif kind == "abort":
            out = self.engine.abort_request(cmd[1])
            stream = self._streams.pop(cmd[1], None)
            if out is not None and stream is not None:
                _post(stream, out)
        elif kind == "barrier":
            fut = cmd[1]
            try:
                fut.get_loop().call_soon_threadsafe(lambda: fut.done() or fut.set_result(None))
            except RuntimeError:  # the caller's loop is closed
                pass
        elif kind == "stop":
            return False
        return True

    def _deliver(self, outputs: list[RequestOutput]) -> None:
        for out in outputs:
            self._deliver_to(out.request_id, out)

    def _deliver_to(self, request_id: str, item) -> None:
        stream = self._streams.get(request_id)
        if stream is None:
            return
        if isinstance(item, BaseException) or (item.finished and request_id not in self.engine.requests):
            self._streams.pop(request_id, None)
        _post(stream, item)

    def _fail_all(self, exc: Exception) -> None:
        for request_id in list(self.engine.requests):
            self.engine.abort_request(request_id)
            self._deliver_to(request_id, exc)

    def _abort_all(self) -> None:
        for request_id in list(self.engine.requests):
            out = self.engine.abort_request(request_id)
            self._deliver_to(request_id, out)


def _post(stream: _Stream, item) -> None:
    """Hand an item to the stream's loop (ignored if that loop is already closed)."""
    try:
        stream.loop.call_soon_threadsafe(stream.queue.put_nowait, item)
    except RuntimeError:
        pass
