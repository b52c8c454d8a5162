"""MockEngine: a GenerateEngine that computes nothing but behaves like a serving engine, as Dynamo's mocker.

Tokens: token i of the output is the prompt's token i (EOS ids removed), cycling; without ignore_eos it ends
with EOS after one pass over the prompt (not before min_tokens); max_tokens, stop_token_ids, logprobs and prompt
logprobs (fixed values, logprobs.py) and cancellation are honoured. Deterministic: the same prompt gives the same
tokens on any worker.
Engine: a continuous-batching scheduler (FIFO admission under a token budget and a sequence cap, chunked
prefill, preemption of the newest request when the KV cache is full) over a paged KV cache with prefix
caching and the torch engine's KV events (kv_cache.py). Time: instant (one event-loop turn per step) unless
a PerfModel is given (timing.py: prefill grows with uncached tokens, decode with KV use), plus step_delay_s.
"""
from __future__ import annotations

import asyncio
import logging
import sys
from typing import AsyncIterator, Callable

from pyimpl.llm.engine.kv_events import KvEvent
from pyimpl.llm.engine.outputs import EngineStats, RequestOutput
from pyimpl.llm.errors import EngineRequestError

from .kv_cache import KvSequence, MockKvCache
from .params import MockSamplingParams, make_params
from .request import MAX_UNREAD, MockRequest as _Request, NEXT_TURN, apply_decodes
from .timing import PerfModel

log = logging.getLogger(__name__)


class MockEngine:
    """The mock engine; `perf_model=None` (default) answers as fast as the event loop turns."""

    def __init__(self, eos_token_ids: list[int] | None = None, max_model_len: int = 4096,
                 vocab_size: int = 32000, block_size: int = 16, step_delay_s: float = 0.0,
                 perf_model: PerfModel | None = None, num_gpu_blocks: int = 16384,
                 max_num_batched_tokens: int = 8192, max_num_seqs: int = 256, speedup_ratio: float | None = None):
        """`speedup_ratio` (the worker's --speedup-ratio) turns the timing model on: PerfModel(speedup_ratio)."""
        if max_num_batched_tokens < 1 or max_num_seqs < 1:
            raise ValueError("max_num_batched_tokens and max_num_seqs must be positive")
        if perf_model is None and speedup_ratio is not None:
            perf_model = PerfModel(speedup_ratio)
        self._eos = list(eos_token_ids or [])
        self._eos_set = frozenset(self._eos)
        self._max_model_len, self._vocab_size, self._block_size = max_model_len, vocab_size, block_size
        self.step_delay_s, self.perf_model = step_delay_s, perf_model
        self.max_num_batched_tokens, self.max_num_seqs = max_num_batched_tokens, max_num_seqs
        self.kv = MockKvCache(num_gpu_blocks, block_size)
        self._aborts = 0
        self.finished_count = 0
        self.num_preemptions = 0
        self.num_steps = 0
        self._requests: dict[str, _Request] = {}
        self._waiting: list[_Request] = []
        self._running: list[_Request] = []
        self._wake: asyncio.Event | None = None
        self._loop_task: asyncio.Task | None = None
        self._stopped = False

    # ---- GenerateEngine facts
    @property
    def eos_token_ids(self) -> list[int]:
        return list(self._eos)

    @property
    def max_model_len(self) -> int:
        return self._max_model_len

    @property
    def block_size(self) -> int:
        return self._block_size

    @property
    def vocab_size(self) -> int:
        return self._vocab_size

    @property
    def abort_count(self) -> int:
        return self._aborts

    def stats(self) -> EngineStats:
        kv = self.kv
        return EngineStats(len(self._running), len(self._waiting), kv.used, kv.num_blocks,
                           kv.hit_tokens / kv.query_tokens if kv.query_tokens else 0.0, self._aborts,
                           kv.query_tokens, kv.hit_tokens, {"num_preemptions": self.num_preemptions})

    def make_params(self, wire: dict) -> MockSamplingParams:
        return make_params(wire)

    def subscribe_kv_events(self, callback: Callable[[KvEvent], None]) -> Callable[[], None]:
        """`callback` runs on the engine's event loop, inside its step."""
        return self.kv.events.subscribe(callback)

    def reset_prefix_cache(self) -> bool:
        return self.kv.reset()

    # ---- requests
    async def generate(self, prompt_token_ids: list[int], params: MockSamplingParams | None,
                       request_id: str) -> AsyncIterator[RequestOutput]:
        """RequestOutput deltas, one token each, the last `finished`; closing the stream early aborts."""
        if self._stopped:
            raise RuntimeError("MockEngine is shut down")
        params = params or MockSamplingParams()
        if request_id in self._requests:
            raise EngineRequestError(f"request_id {request_id!r} is already in use", param="request_id")
        tokens = list(prompt_token_ids)
        if len(tokens) > self._max_model_len:
            raise EngineRequestError(f"prompt of {len(tokens)} tokens exceeds the context of "
                                     f"{self._max_model_len}", param="prompt")
        if self.kv.blocks_needed(len(tokens) + 1) > self.kv.num_blocks:
            raise EngineRequestError(f"prompt of {len(tokens)} tokens needs more KV blocks than the "
                                     f"engine's {self.kv.num_blocks}", param="prompt")
        room = max(1, self._max_model_len - len(tokens))
        max_new = room if params.max_tokens is None else min(params.max_tokens, room)
        eos = self._eos
        # a prompt without EOS ids (most) is copied in C instead of filtered token by token
        echo = ([t for t in tokens if t not in eos] if eos and not self._eos_set.isdisjoint(tokens)
                else tokens[:]) or [0]
        eos_at = max(len(echo), params.min_tokens) if self._eos and not params.ignore_eos else sys.maxsize
        req = _Request(request_id, params, echo, len(tokens), max_new, KvSequence(tokens), eos_at,
                       frozenset(params.stop_token_ids))
        self._requests[request_id] = req
        self._waiting.append(req)
        self._kick()
        outbox = req.outbox
        instant = self.perf_model is None and not self.step_delay_s
        try:
            while True:
                while not outbox:
                    if instant and req.running:
                        await NEXT_TURN       # instant steps give a token every loop turn: no future needed
                    else:
                        await outbox.ready()
                out = outbox.popleft()
                if req.paused:
                    req.paused = False
                    self._wake.set()
                yield out
                if out.finished:
                    return
        finally:
            if not req.done:
                self._finish(req, "abort", emit=False)

    async def abort(self, request_id: str) -> None:
        """End a request; its stream's last output has finish_reason "abort"."""
        req = self._requests.get(request_id)
        if req is not None and not req.done:
            self._finish(req, "abort")

    async def shutdown(self) -> None:
        """Abort everything in flight and stop the scheduler; idempotent."""
        self._stopped = True
        for req in list(self._requests.values()):
            self._finish(req, "abort")
        if self._loop_task is not None:
            self._loop_task.cancel()
            await asyncio.gather(self._loop_task, return_exceptions=True)
            self._loop_task = None

    # ---- scheduler
    def _kick(self) -> None:
        if self._loop_task is None or self._loop_task.done():
            self._wake = asyncio.Event()
            self._loop_task = asyncio.get_running_loop().create_task(self._run())
        self._wake.set()

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while not self._stopped:
            if not self._waiting and not self._running:
                self._wake.clear()
                await self._wake.wait()
                continue
            timed = self.perf_model is not None or self.step_delay_s
            started = loop.time() if timed else 0.0
            try:
                decodes, prefills = self._schedule()
                if not decodes and not prefills:   # every request waits for its reader (or for KV room)
                    self._wake.clear()
                    await self._wake.wait()
                    continue
                if timed:
                    delay = self.step_delay_s
                    if self.perf_model is not None:
                        prefill = sum(n for _, n in prefills)
                        delay += self.perf_model.step_s(prefill, bool(decodes), self.kv.used / self.kv.num_blocks)
                    await asyncio.sleep(max(0.0, started + delay - loop.time()))
                else:
                    await NEXT_TURN               # an instant step: one loop turn, as asyncio.sleep(0)
                self._apply(decodes, prefills)
            except Exception:       # a bug must end the requests, not hang them
                log.exception("mock engine step failed")
                for req in list(self._requests.values()):
                    self._finish(req, "abort")

    def _schedule(self) -> tuple[list[_Request], list[tuple[_Request, int]]]:
        """This step's decodes (one token each) and prefill chunks (request, tokens to compute): running requests
        first (oldest first), then admissions in arrival order while budget and KV allow."""
        budget, decodes, prefills, bs = self.max_num_batched_tokens, [], [], self.kv.block_size
        add_decode, max_unread = decodes.append, MAX_UNREAD
        for req in list(self._running):
            if not req.running:                 # preempted by an older request's growth this step
                continue
            kv = req.kv
            n = len(kv.tokens)
            need = n - req.num_computed
            if need == 1 and req.generated:     # a decode (the hot path: kept lean)
                if len(req.outbox) >= max_unread:
                    req.paused = True
                    continue
                # its last token's slot (kv.grow's test inline: most decodes need no new block)
                if n > (len(kv.held) + kv.private) * bs and not self._make_room(req, n):
                    continue
                if budget > 0:
                    add_decode(req)
                    budget -= 1
                continue
            chunk = min(need, budget)
            if chunk > 0:
                prefills.append((req, chunk))
                budget -= chunk
        while self._waiting and budget > 0 and len(self._running) < self.max_num_seqs:
            req = self._waiting[0]
            hits = self.kv.match(req.kv)
            if not self.kv.can_admit(hits, len(req.kv.tokens)):
                break
            self._waiting.pop(0)
            self.kv.admit(req.kv, hits, len(req.kv.tokens))
            req.num_computed = len(hits) * self.kv.block_size
            self._running.append(req)
            req.running = True
            chunk = min(len(req.kv.tokens) - req.num_computed, budget)
            prefills.append((req, chunk))           # an empty prompt: a step of no tokens
            budget -= chunk
        return decodes, prefills

    def _make_room(self, req: _Request, num_tokens: int) -> bool:
        """Grow `req`'s KV, preempting the newest other running requests if needed; False: `req` itself
        was preempted or finished (the cache cannot hold it)."""
        while not self.kv.grow(req.kv, num_tokens):
            victim = self._running[-1]
            if victim is req and len(self._running) == 1:
                self._finish(req, "length")      # alone and still too big for the cache
                return False
            self._preempt(victim)
            if victim is req:
                return False
        return True

    def _preempt(self, req: _Request) -> None:
        self.kv.release(req.kv)
        self._running.remove(req)
        req.running = False
        req.num_computed = 0
        self._waiting.insert(0, req)
        self.num_preemptions += 1

    def _apply(self, decodes: list[_Request], prefills: list[tuple[_Request, int]]) -> None:
        """The step's end: decodes first (a token each), then prefill chunks (a token once a prompt is done)."""
        self.num_steps += 1
        kv = self.kv
        bs = kv.block_size
        eos, vocab_size = self._eos, self._vocab_size
        apply_decodes(decodes, kv, eos, vocab_size, self._finish)
        for req, chunk in prefills:
            if req.running:
                computed = req.num_computed = req.num_computed + chunk
                if computed // bs > len(req.kv.held):
                    kv.register(req.kv, computed)
                if computed >= len(req.kv.tokens) and (reason := req.emit_next(eos, vocab_size)):
                    self._finish(req, reason, emit=False)

    def _finish(self, req: _Request, reason: str, emit: bool = True) -> None:
        """Release the request; `emit` sends a closing output (aborts and forced ends)."""
        if req.done:
            return
        req.done = True
        self._requests.pop(req.request_id, None)
        if req.running:
            req.running = False
            self._running.remove(req)
            self.kv.release(req.kv)
        elif req in self._waiting:
            self._waiting.remove(req)
        if self._wake is not None:
            self._wake.set()                    # its KV room may admit a waiting request
        if reason == "abort":
            self._aborts += 1
        else:
            self.finished_count += 1
        if emit:
            req.outbox.put(RequestOutput(req.request_id, [], req.generated, True, reason))
