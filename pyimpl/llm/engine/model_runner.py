"""Turns a scheduled batch into tensors, runs the model over the paged KV cache, returns last-token logits."""
from __future__ import annotations

import torch

from .attention import AttentionMetadata, PrefillSegment
from .model_api import CausalLM
from .sequence import Sequence


class ModelRunner:
    """Owns the model and the KV cache [layers, 2, num_blocks*block_size, kv_heads, head_dim]."""

    def __init__(self, model: CausalLM, num_blocks: int, block_size: int) -> None:
        self.model = model
        self.device = model.device
        self.block_size = block_size
        self.kv_cache = torch.zeros(model.num_layers, 2, num_blocks * block_size, model.num_kv_heads,
                                    model.head_dim, device=model.device, dtype=model.dtype)

    @staticmethod
    def kv_bytes_per_block(model: CausalLM, block_size: int) -> int:
        elem = torch.empty(0, dtype=model.dtype).element_size()
        return model.num_layers * 2 * block_size * model.num_kv_heads * model.head_dim * elem

    @torch.inference_mode()
    def run(self, batch: list[tuple[Sequence, int]]) -> torch.Tensor:
        """Compute the next `n` uncomputed tokens of each (sequence, n); returns logits [k, vocab] for the k
        sequences whose chunk reaches their last token, in batch order."""
        input_ids, meta, logits_index = self._prepare(batch)
        return self.model.forward(input_ids, meta, self.kv_cache, logits_index)

    def _tensor(self, data, dtype=torch.long) -> torch.Tensor:
        return torch.tensor(data, dtype=dtype).to(self.device, non_blocking=True)

    def _prepare(self, batch: list[tuple[Sequence, int]]):
        """Flatten the step: one-token chunks first (batched decode rows), then one segment per longer chunk."""
        bs = self.block_size
        order = [i for i, (_, n) in enumerate(batch) if n == 1] + [i for i, (_, n) in enumerate(batch) if n != 1]
        num_decode = sum(1 for _, n in batch if n == 1)
        ids, pos, slots, last_row, prefills = [], [], [], {}, []
        decode_tables, decode_lens = [], []
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
            used = table[:-(-end // bs)]
            if n == 1:
                decode_tables.append(used)
                decode_lens.append(end)
                continue
            contiguous = used[-1] - used[0] == len(used) - 1 and all(b - a == 1 for a, b in zip(used, used[1:]))
            prefills.append(PrefillSegment(
                q_start=row, q_len=n, k_len=end,
                slots=None if contiguous else self._tensor([used[p // bs] * bs + p % bs for p in range(end)]),
                slot_start=used[0] * bs if contiguous else None))
        meta = AttentionMetadata(positions=self._tensor(pos), slot_mapping=self._tensor(slots), block_size=bs,
                                 num_decode=num_decode, prefills=prefills)
        if num_decode:
            width = max(len(t) for t in decode_tables)
            meta.decode_blocks = self._tensor([t + [0] * (width - len(t)) for t in decode_tables])
            meta.decode_lens = self._tensor(decode_lens)
            meta.decode_max_len, meta.decode_min_len = max(decode_lens), min(decode_lens)
        logits_index = self._tensor([last_row[i] for i in range(len(batch)) if i in last_row])
        return self._tensor(ids), meta, logits_index


class HFModelRunner:
    """Fallback for architectures without an own implementation: transformers' model, full recompute per step."""

    def __init__(self, model_dir: str, device: torch.device, dtype: torch.dtype) -> None:
        from transformers import AutoModelForCausalLM

        self.model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype).to(device).eval()
        self.device = device

    @torch.inference_mode()
    def run(self, batch: list[tuple[Sequence, int]]) -> torch.Tensor:
        """Logits of the last token of every sequence whose chunk completes it (chunks are recomputed in full)."""
        done = [s for s, n in batch if s.num_computed_tokens + n == s.num_tokens]
        if not done:
            return torch.empty(0, self.model.config.vocab_size)
        rows = [self.model(input_ids=torch.tensor([s.token_ids], device=self.device)).logits[0, -1] for s in done]
        return torch.stack(rows).float()
