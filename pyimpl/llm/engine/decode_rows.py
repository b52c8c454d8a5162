"""Per-sequence contiguous K/V rows for decode steps: a decode step reads every sequence's keys in place instead of
gathering every block of every sequence in every layer (that gather was ~20% of a batch-32 CPU decode step).

The paged cache stays the source of truth (prefill, prefix caching, KV events, preemption and n>1 forks use it
alone); the rows copy the decoding sequences' keys and values, laid out [layers, 2, rows, KVH, capacity, D] so that
rows [a, b) of one layer are a single strided tensor that batched matmuls read directly. A sequence gets a row
(copied once from its blocks) on its first one-token step and loses it on the first step it is not decoding in
(finished, preempted, aborted, prefilling again), or when its row no longer matches its computed tokens; rows stay
dense and sorted by length (all grow by one token a step; rows move when sequences join or leave). Each decode step writes its new key/value into the paged cache and
into the row (attention.write_kv).

Memory bound: rows x capacity tokens at the paged cache's per-token size, rows <= the concurrent decodes (rounded
up to 8) and capacity = the longest decoding sequence rounded up to 128 tokens, never above `budget_bytes` (the
engine passes the paged pool's size, so the KV memory is at most twice the pool): a step whose decodes would need
more releases the rows and gathers blocks as before (attention._decode).
"""
from __future__ import annotations

import torch

from .sequence import Sequence

ROW_STEP = 8
CAPACITY_STEP = 128


class DecodeRows:
    """The rows of the sequences decoding now; ModelRunner calls `place` once per step, models never see it."""

    def __init__(self, kv_cache: torch.Tensor, block_size: int, budget_bytes: int) -> None:
        self.kv_cache = kv_cache  # [L, 2, KVH, slots, D]
        self.block_size = block_size
        self.budget_bytes = budget_bytes
        L, _, KVH, _, D = kv_cache.shape
        self.token_bytes = L * 2 * KVH * D * kv_cache.element_size()
        self.buffer: torch.Tensor | None = None  # [L, 2, rows, KVH, capacity, D]
        self.seqs: list[Sequence] = []  # row -> sequence
        self.filled: list[int] = []  # row -> tokens it holds

    @property
    def nbytes(self) -> int:
        return 0 if self.buffer is None else self.buffer.numel() * self.buffer.element_size()

    def place(self, decoding: list[Sequence]) -> list[Sequence] | None:
        """Give every sequence of this step's one-token chunks a row holding its computed tokens; returns them in
        row order (row i = the step's i-th decode; rows are kept sorted by length, so that decode groups of
        neighbouring rows pad little), or None (rows released) when they do not fit the budget."""
        if not decoding:
            self.release_all()
            return []
        wanted = set(decoding)
        keep = [row for row, seq in enumerate(self.seqs)
                if seq in wanted and self.filled[row] == seq.num_computed_tokens]
        for new, row in enumerate(keep):  # ascending: a row only moves down, into a row already vacated
            self._move(row, new, self.filled[row])
        self.seqs, self.filled = [self.seqs[r] for r in keep], [self.filled[r] for r in keep]
        longest = max(s.num_computed_tokens for s in decoding) + 1
        if not self._reserve(len(decoding), longest):
            self.release_all()
            return None
        held = set(self.seqs)
        joining = sorted((s for s in decoding if s not in held), key=lambda s: s.num_computed_tokens)
        if joining:
            self._insert(joining)
        for row, seq in enumerate(self.seqs):
            self.filled[row] = seq.num_computed_tokens + 1  # the step writes its new token's K/V (write_kv)
        return list(self.seqs)

    def release_all(self) -> None:
        self.buffer, self.seqs, self.filled = None, [], []

    def _insert(self, joining: list[Sequence]) -> None:
        """Merge length-sorted new sequences into the sorted rows: rows move up (last first), new ones are filled."""
        old = len(self.seqs)
        merged = sorted([(s.num_computed_tokens, 0, i) for i, s in enumerate(self.seqs)]
                        + [(s.num_computed_tokens, 1, i) for i, s in enumerate(joining)])
        target = {i: dest for dest, (_, new, i) in enumerate(merged) if not new}
        seqs, filled = [None] * len(merged), [0] * len(merged)
        for row in range(old - 1, -1, -1):  # descending: a row only moves up, into a free or vacated row
            self._move(row, target[row], self.filled[row])
            seqs[target[row]], filled[target[row]] = self.seqs[row], self.filled[row]
        self.seqs, self.filled = seqs, filled
        for dest, (_, new, i) in enumerate(merged):
            if new:
                self._fill(dest, joining[i])

    def _move(self, row: int, dest: int, n: int) -> None:
        if row != dest:
            self.buffer[:, :, dest, :, :n] = self.buffer[:, :, row, :, :n]

    def _reserve(self, rows: int, tokens: int) -> bool:
        """Grow the buffer to hold `rows` rows of `tokens` tokens (within the budget); False if it cannot."""
        have_rows, have_cap = (0, 0) if self.buffer is None else (self.buffer.shape[2], self.buffer.shape[4])
        if rows <= have_rows and tokens <= have_cap:
            return True
        cap = max(have_cap, -(-tokens // CAPACITY_STEP) * CAPACITY_STEP)
        new_rows = max(have_rows, -(-rows // ROW_STEP) * ROW_STEP)
        if new_rows * cap * self.token_bytes > self.budget_bytes:
            new_rows = max(have_rows, rows)
            if new_rows * cap * self.token_bytes > self.budget_bytes:
                return False
        L, _, KVH, _, D = self.kv_cache.shape
        old = self.buffer
        self.buffer = self.kv_cache.new_zeros(L, 2, new_rows, KVH, cap, D)  # padding keys are read (masked): finite
        if old is not None and self.seqs:
            n = max(self.filled)
            self.buffer[:, :, :len(self.seqs), :, :n] = old[:, :, :len(self.seqs), :, :n]
        return True

    def _fill(self, row: int, seq: Sequence) -> None:
        """Copy a sequence's computed tokens from its blocks into `row` (once per decode start)."""
        n, bs = seq.num_computed_tokens, self.block_size
        if n:
            blocks = torch.tensor(seq.block_table[:-(-n // bs)], dtype=torch.long)
            slots = (blocks[:, None] * bs + torch.arange(bs)).reshape(-1)[:n].to(self.kv_cache.device)
            self.buffer[:, :, row, :, :n] = self.kv_cache.index_select(3, slots)
        self.seqs[row], self.filled[row] = seq, n
