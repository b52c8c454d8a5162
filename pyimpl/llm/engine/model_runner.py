"""Turns a scheduled batch into tensors, runs the model over the paged KV cache, returns last-token logits
(and the prompt rows' logits of sequences asking for prompt logprobs)."""
from __future__ import annotations

import torch

from .attention import AttentionMetadata, DecodeGroup, PrefillSegment
from .decode_rows import DecodeRows
from .model_api import CausalLM
from .sequence import Sequence


class ModelRunner:
    """Owns the model and the KV cache [layers, 2, kv_heads, num_blocks*block_size, head_dim] (head-major, see
    attention.py; models only hand it and a layer index to write_kv / paged_attention), and the decoding
    sequences' contiguous K/V rows (decode_rows.py) within `decode_rows_bytes` (None: the pool's size)."""

    def __init__(self, model: CausalLM, num_blocks: int, block_size: int, decode_rows_bytes: int | None = None) -> None:
        self.model = model
        self.device = model.device
        self.block_size = block_size
        self.kv_cache = torch.zeros(model.num_layers, 2, model.num_kv_heads, num_blocks * block_size,
                                    model.head_dim, device=model.device, dtype=model.dtype)
        if decode_rows_bytes is None:
            decode_rows_bytes = self.kv_cache.numel() * self.kv_cache.element_size()
        self.decode_rows = DecodeRows(self.kv_cache, block_size, decode_rows_bytes)

    @staticmethod
    def kv_bytes_per_block(model: CausalLM, block_size: int) -> int:
        elem = torch.empty(0, dtype=model.dtype).element_size()
        return model.num_layers * 2 * block_size * model.num_kv_heads * model.head_dim * elem

    @torch.inference_mode()
    def run(self, batch: list[tuple[Sequence, int]]) -> tuple[torch.Tensor, dict[int, torch.Tensor]]:
        """Compute the next `n` uncomputed tokens of each (sequence, n); returns logits [k, vocab] for the k
        sequences whose chunk reaches their last token, in batch order, and, by batch index, the logits of the
        rows of each chunk's Sequence.prompt_rows (prompt logprobs)."""
        input_ids, meta, last_rows, prompt_rows = self._prepare(batch)
        wanted = [r for rows in prompt_rows.values() for r in rows]
        ascending = sorted(last_rows + wanted)  # models may skip the row selection when every row is wanted
        logits = self.model.forward(input_ids, meta, self.kv_cache, self._tensor(ascending))
        if not wanted and ascending == last_rows:
            return logits, {}
        where = {row: k for k, row in enumerate(ascending)}
        prompt = {i: logits[where[rows[0]]:where[rows[0]] + len(rows)] for i, rows in prompt_rows.items()}
        return logits.index_select(0, self._tensor([where[row] for row in last_rows])), prompt

    def _tensor(self, data, dtype=torch.long) -> torch.Tensor:
        return torch.tensor(data, dtype=dtype).to(self.device, non_blocking=True)

    def _prepare(self, batch: list[tuple[Sequence, int]]):
        """Flatten the step: one-token chunks first (in decode-row order, else by length in decode groups), then one
        segment per chunk."""
        bs = self.block_size
        singles = [i for i, (_, n) in enumerate(batch) if n == 1]
        placed = self.decode_rows.place([batch[i][0] for i in singles])
        if placed is None:
            singles.sort(key=lambda i: batch[i][0].num_computed_tokens)
        else:
            where = {id(batch[i][0]): i for i in singles}
            singles = [where[id(seq)] for seq in placed]
        order = singles + [i for i, (_, n) in enumerate(batch) if n != 1]
        ids, pos, slots, last_row, prefills, prompt_rows = [], [], [], {}, [], {}
        decode_rows: list[tuple[list[int], int]] = []  # (blocks, keys) per one-token chunk
        for i in order:
            seq, n = batch[i]
            start = seq.num_computed_tokens
            end = start + n
            table = seq.block_table
            row = len(ids)
            ids.extend(seq.token_ids[start:end])
            pos.extend(range(start, end))
            slots.extend(table[p // bs] * bs + p % bs for p in range(start, end))
            if end == seq.num_tokens:
                last_row[i] = len(ids) - 1
            scored = seq.prompt_rows(start, end)
            if scored:
                prompt_rows[i] = [row + q - start for q in scored]
            used = table[:-(-end // bs)]
            if n == 1:
                decode_rows.append((used, end))
                continue
            contiguous = all(b - a == 1 for a, b in zip(used, used[1:]))
            prefills.append(PrefillSegment(
                q_start=row, q_len=n, k_len=end,
                blocks=None if contiguous else self._tensor(used),
                slot_start=used[0] * bs if contiguous else None))
        meta = AttentionMetadata(positions=self._tensor(pos), slot_mapping=self._tensor(slots), block_size=bs,
                                 decodes=self._decode_groups(decode_rows, placed is not None), prefills=prefills)
        if placed:
            rows = self.decode_rows.buffer
            KVH, cap = rows.shape[3], rows.shape[4]
            meta.decode_rows = rows
            meta.decode_index = self._tensor([(r * KVH + h) * cap + end - 1 for r, (_, end) in enumerate(decode_rows)
                                              for h in range(KVH)])
        return self._tensor(ids), meta, [last_row[i] for i in range(len(batch)) if i in last_row], prompt_rows

    def _decode_groups(self, rows: list[tuple[list[int], int]], in_rows: bool) -> list[DecodeGroup]:
        """Split length-sorted one-token chunks so that padding to a group's longest row wastes under ~25% (chunks
        in decode rows read their keys in place and need no block table)."""
        groups, start = [], 0
        for end in range(1, len(rows) + 1):
            if end < len(rows):
                blocks = sum(len(b) for b, _ in rows[start:end + 1])
                if len(rows[end][0]) * (end + 1 - start) <= 1.25 * blocks:
                    continue
            part = rows[start:end]
            width = max(len(b) for b, _ in part)
            groups.append(DecodeGroup(
                row_start=start, rows=len(part),
                blocks=None if in_rows else self._tensor([b + [0] * (width - len(b)) for b, _ in part]),
                lens=self._tensor([k for _, k in part]), max_len=max(k for _, k in part),
                min_len=min(k for _, k in part)))
            start = end
        return groups


class HFModelRunner:
    """Fallback for architectures without an own implementation: transformers' model, full recompute per step."""

    def __init__(self, model_dir: str, device: torch.device, dtype: torch.dtype) -> None:
        from transformers import AutoModelForCausalLM

        self.model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype).to(device).eval()
        self.device = device

    @torch.inference_mode()
    def run(self, batch: list[tuple[Sequence, int]]) -> tuple[torch.Tensor, dict[int, torch.Tensor]]:
        """Logits of the last token of every sequence whose chunk completes it (chunks are recomputed in full),
        and, by batch index, those of its unscored prompt rows (ModelRunner.run)."""
        done = [(i, s) for i, (s, n) in enumerate(batch) if s.num_computed_tokens + n == s.num_tokens]
        if not done:
            return torch.empty(0, self.model.config.vocab_size), {}
        rows, prompt = [], {}
        for i, s in done:
            logits = self.model(input_ids=torch.tensor([s.token_ids], device=self.device)).logits[0].float()
            rows.append(logits[-1])
            scored = s.prompt_rows(0, s.num_tokens)
            if scored:
                prompt[i] = logits[scored.start:scored.stop]
        return torch.stack(rows), prompt
