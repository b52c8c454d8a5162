"""vLLM-v1-style scheduler: one token budget per step shared by running requests (decodes, prefill chunks) and
admissions; chunked prefill; preemption by recompute of the youngest request."""
from __future__ import annotations

import bisect
from collections import deque

from .block_manager import BlockManager
from .prompt_logprobs import MAX_ROWS_PER_STEP
from .sequence import Sequence, SequenceStatus

ScheduledBatch = list[tuple[Sequence, int]]  # (sequence, number of its next uncomputed tokens to compute now)


class Scheduler:
    """Waiting (FCFS) and running (by arrival) queues under `max_num_batched_tokens` tokens per step.

    Running requests are served first, oldest first, so admissions never starve decodes; a long prompt is
    prefilled in chunks across steps. When blocks run out the youngest running request is preempted; since
    requests keep their arrival rank, the oldest one always progresses and no victim is picked forever."""

    def __init__(self, block_manager: BlockManager, max_num_seqs: int, max_num_batched_tokens: int,
                 idle_num_batched_tokens: int | None = None) -> None:
        """idle_num_batched_tokens: the budget of a step when no running request is decoding (nobody's inter-token
        latency to protect: prefill in big chunks); None: max_num_batched_tokens always."""
        if max_num_batched_tokens < 1:
            raise ValueError(f"max_num_batched_tokens must be >= 1, got {max_num_batched_tokens}")
        self.block_manager = block_manager
        self.max_num_seqs = max_num_seqs
        self.max_num_batched_tokens = max_num_batched_tokens
        self.idle_num_batched_tokens = max(idle_num_batched_tokens or 0, max_num_batched_tokens)
        self.waiting: deque[Sequence] = deque()
        self.running: list[Sequence] = []  # sorted by Sequence.rank (oldest first)
        self.num_preemptions = 0
        self.max_prompt_logprob_rows = MAX_ROWS_PER_STEP  # bounds a step's logits for prompt logprobs

    def add(self, seq: Sequence, first: bool = False) -> None:
        """Queue `seq` (at the front with `first`, e.g. forked choices that already hold blocks)."""
        self.waiting.appendleft(seq) if first else self.waiting.append(seq)

    def has_unfinished(self) -> bool:
        return bool(self.waiting or self.running)

    def schedule(self) -> ScheduledBatch:
        """Pick this step's work: (sequence, tokens) pairs whose total is at most the token budget."""
        bm = self.block_manager
        budget = self.max_num_batched_tokens
        if not any(s.num_computed_tokens >= s.num_prompt_tokens for s in self.running):
            budget = self.idle_num_batched_tokens
        batch: ScheduledBatch = []
        preempted = False
        for seq in list(self.running):
            if budget == 0:
                break
            if seq.status != SequenceStatus.RUNNING:  # preempted earlier in this loop
                continue
            n = self._chunk(seq, min(seq.num_tokens - seq.num_computed_tokens, budget))
            while not bm.can_append(seq, seq.num_computed_tokens + n):
                victim = self.running[-1]
                self.preempt(victim)
                preempted = True
                if victim is seq:
                    break
            else:
                bm.append_slots(seq, seq.num_computed_tokens + n)
                batch.append((seq, n))
                budget -= n
        while self.waiting and budget > 0 and not preempted and len(self.running) < self.max_num_seqs:
            seq = self.waiting[0]
            if seq.block_table:  # a forked choice: it already shares its prompt's blocks
                n = self._chunk(seq, min(seq.num_tokens - seq.num_computed_tokens, budget))
                if not bm.can_append(seq, seq.num_computed_tokens + n):
                    break
                bm.append_slots(seq, seq.num_computed_tokens + n)
            else:
                hits = [] if seq.wants_prompt_rows else bm.lookup(seq)   # cached rows kept no logits
                n = self._chunk(seq, min(seq.num_tokens - len(hits) * bm.block_size, budget))
                if not bm.can_allocate(hits, len(hits) * bm.block_size + n):
                    break
                bm.allocate(seq, hits, len(hits) * bm.block_size + n)
            self.waiting.popleft()
            seq.status = SequenceStatus.RUNNING
            bisect.insort(self.running, seq, key=lambda s: s.rank)
            batch.append((seq, n))
            budget -= n
        return batch

    def _chunk(self, seq: Sequence, n: int) -> int:
        """`n` tokens, or fewer for a sequence whose prompt rows keep their logits (prompt logprobs)."""
        return min(n, self.max_prompt_logprob_rows) if seq.wants_prompt_rows else n

    def preempt(self, seq: Sequence) -> None:
        """Drop `seq`'s KV and put it first in line; it is recomputed from its tokens later."""
        self.running.remove(seq)
        self.block_manager.free(seq)
        seq.status = SequenceStatus.WAITING
        self.waiting.appendleft(seq)
        self.num_preemptions += 1

    def finish(self, seq: Sequence, reason: str) -> None:
        """Mark `seq` finished, take it out of its queue and free its blocks at once."""
        if seq.status == SequenceStatus.RUNNING:
            self.running.remove(seq)
        elif seq.status == SequenceStatus.WAITING and seq in self.waiting:
            self.waiting.remove(seq)
        seq.status = SequenceStatus.FINISHED
        seq.finish_reason = reason
        self.block_manager.free(seq)
