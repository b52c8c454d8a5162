"""One request inside the mock engine: its state, its next token, and the outbox its reader takes outputs from.

The outbox is a deque with one waiting future rather than an asyncio.Queue, which does more work per item
(loop checks, getter/putter bookkeeping, a coroutine per get): every token of every mock request passes
through it, so it is the mock's hot path. A deque subclass, so len() and truth tests stay in C. One reader
and one writer on the same loop; unbounded (the scheduler pauses a request whose reader is MAX_UNREAD
outputs behind). While the engine steps every loop turn (no timing model, no step delay) a running request's
reader polls with NEXT_TURN instead: a token comes every turn, so a future per token would be pure cost."""
from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass, field
from typing import Callable, TypeVar

from pyimpl.llm.engine.outputs import RequestOutput

from .kv_cache import KvSequence, MockKvCache
from .logprobs import add_fake_logprobs
from .params import MockSamplingParams

MAX_UNREAD = 64     # outputs queued for a request's reader before its decoding waits (memory stays bounded)
T = TypeVar("T")


class Outbox(deque[T]):
    """`put` never blocks; the reader takes with `popleft` after awaiting `ready()` while the outbox is empty."""

    __slots__ = ("waiter",)

    def __init__(self) -> None:
        super().__init__()
        self.waiter: asyncio.Future | None = None

    def put(self, item: T) -> None:
        self.append(item)
        if self.waiter is not None:
            self.wake()

    def wake(self) -> None:
        """Wake the reader (put, or an inline append, calls it when a reader waits)."""
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def ready(self) -> asyncio.Future:
        """A future done once an item is there (await it while the outbox is empty); a plain function, not a
        coroutine, so waiting costs one future and no extra frame."""
        waiter = self.waiter = asyncio.get_running_loop().create_future()
        if self:
            waiter.set_result(None)
        return waiter


class _NextTurn:
    """`await NEXT_TURN` gives the loop one turn, as asyncio.sleep(0): its __await__ is a one-item iterator of
    None (a bare yield to the task), made in C, so the mock's per-token wait runs no generator frame."""

    __slots__ = ()
    __await__ = (None,).__iter__


NEXT_TURN = _NextTurn()


@dataclass(eq=False)
class MockRequest:
    """A request from generate() to its end: what it echoes, its KV sequence, its progress and its outbox."""

    request_id: str
    params: MockSamplingParams
    echo: list[int]                      # what the output cycles through
    prompt_len: int
    max_new: int
    kv: KvSequence
    eos_at: int                          # the output index that is EOS (sys.maxsize: none; ignore_eos or no EOS ids)
    stop_ids: frozenset[int]             # params.stop_token_ids
    # output index below which no stop condition can hold (EOS, a stop id past min_tokens, max_new): the
    # common decode then tests one int instead of three conditions
    quiet_until: int = 0
    logprobs: bool = False               # params.logprobs is not None
    outbox: Outbox[RequestOutput] = field(default_factory=Outbox)
    generated: list[int] = field(default_factory=list)
    num_computed: int = 0
    running: bool = False                # admitted: holds KV and is in the running list
    paused: bool = False                 # its reader is MAX_UNREAD outputs behind: no decode until it reads
    done: bool = False

    def __post_init__(self) -> None:
        params = self.params
        quiet = min(self.eos_at, self.max_new - 1)
        self.quiet_until = min(quiet, params.min_tokens) if self.stop_ids else quiet
        self.logprobs = params.logprobs is not None

    def emit_next(self, eos_token_ids: list[int], vocab_size: int) -> str | None:
        """Append the next echo token and put its output in the outbox; the finish reason when a stop condition
        holds, else None. Every output of a request shares one token_ids list, `generated` (RequestOutput's
        contract allows it; no copy per token)."""
        generated = self.generated
        i = len(generated)
        echo = self.echo
        token = echo[i % len(echo)]
        reason = None
        if i < self.quiet_until:
            pass
        elif i >= self.eos_at:
            token, reason = eos_token_ids[0], "stop"
        elif self.stop_ids and token in self.stop_ids and i >= self.params.min_tokens:
            reason = "stop"
        elif i + 1 >= self.max_new:
            reason = "length"
        generated.append(token)
        self.kv.tokens.append(token)
        out = RequestOutput(self.request_id, [token], generated, reason is not None, reason)
        if self.logprobs or (i == 0 and self.params.prompt_logprobs is not None):
            add_fake_logprobs(out, self.params, self.kv.tokens[:self.prompt_len] if i == 0 else None, vocab_size)
        outbox = self.outbox
        outbox.append(out)                      # outbox.put inline
        if outbox.waiter is not None:
            outbox.wake()
        return reason


def apply_decodes(decodes: list[MockRequest], kv: MockKvCache, eos_token_ids: list[int], vocab_size: int,
                  finish: Callable[[MockRequest, str, bool], None]) -> None:
    """The end of a step's decodes: each request still running has computed its last token (kv.register when
    that fills a block) and emits its next; `finish(req, reason, False)` ends one that stops. emit_next's quiet
    case (no stop condition can hold yet, no logprobs) is inline: it is nearly every mock token's path, and a
    call per token costs more than the rest of it."""
    bs = kv.block_size
    for req in decodes:
        if not req.running:                     # aborted while the step ran
            continue
        computed = req.num_computed = req.num_computed + 1
        seq = req.kv
        # a block filled (kv.register's own test; held never lags num_computed // bs by more than this one)
        if not computed % bs and computed // bs > len(seq.held):
            kv.register(seq, computed)
        generated = req.generated
        i = len(generated)                      # >= 1: a decode follows the prompt's output
        if i < req.quiet_until and not req.logprobs:
            echo = req.echo
            token = echo[i % len(echo)]
            generated.append(token)
            seq.tokens.append(token)
            outbox = req.outbox
            outbox.append(RequestOutput(req.request_id, [token], generated, False, None))
            if outbox.waiter is not None:
                outbox.wake()
        elif reason := req.emit_next(eos_token_ids, vocab_size):
            finish(req, reason, False)
