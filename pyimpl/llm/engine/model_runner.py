"""Turns a scheduled batch into tensors, runs the model over the paged KV cache, returns last-token logits."""
from __future__ import annotations

import torch

from .llama import AttentionMetadata, LlamaModel
from .sequence import Sequence


class ModelRunner:
    """Owns the model and the KV cache [layers, 2, num_blocks*block_size, kv_heads, head_dim]."""

    def __init__(self, model: LlamaModel, num_blocks: int, block_size: int) -> None:
        self.model = model
        self.device = model.device
        self.block_size = block_size
        self.kv_cache = torch.zeros(model.num_layers, 2, num_blocks * block_size, model.num_kv_heads,
                                    model.head_dim, device=model.device, dtype=model.dtype)

    @staticmethod
    def kv_bytes_per_block(model: LlamaModel, block_size: int) -> int:
        elem = torch.empty(0, dtype=model.dtype).element_size()
        return model.num_layers * 2 * block_size * model.num_kv_heads * model.head_dim * elem

    @torch.inference_mode()
    def run(self, seqs: list[Sequence], is_prefill: bool) -> torch.Tensor:
        """Compute each sequence's uncomputed tokens; returns logits [len(seqs), vocab] for their last tokens."""
        if is_prefill:
            input_ids, positions, meta, logits_index = self._prepare_prefill(seqs)
        else:
            input_ids, positions, meta, logits_index = self._prepare_decode(seqs)
        return self.model.forward(input_ids, meta, self.kv_cache, logits_index)

    def _tensor(self, data, dtype=torch.long) -> torch.Tensor:
        return torch.tensor(data, dtype=dtype).to(self.device, non_blocking=True)

    def _block_tables(self, seqs: list[Sequence], max_k: int) -> tuple[torch.Tensor, int]:
        """Blocks holding positions < max_k per sequence, padded with block 0 (masked out); and the padded length."""
        max_blocks = -(-max_k // self.block_size)
        tables = [s.block_table[:max_blocks] for s in seqs]
        tables = torch.tensor([t + [0] * (max_blocks - len(t)) for t in tables], dtype=torch.long)
        return tables.to(self.device, non_blocking=True), max_blocks * self.block_size

    def _rope(self, positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return (self.model.cos.index_select(0, positions).unsqueeze(1),
                self.model.sin.index_select(0, positions).unsqueeze(1))

    def _prepare_decode(self, seqs: list[Sequence]):
        bs = self.block_size
        lens = [s.num_tokens for s in seqs]
        max_k = max(lens)
        input_ids = self._tensor([s.token_ids[-1] for s in seqs])
        positions = self._tensor([n - 1 for n in lens])
        slot_mapping = self._tensor([s.block_table[(n - 1) // bs] * bs + (n - 1) % bs for s, n in zip(seqs, lens)])
        kv_gather, padded_k = self._block_tables(seqs, max_k)
        mask = None
        window = self.model.sliding_window
        if min(lens) != padded_k or (window and max_k > window):
            j, n = torch.arange(padded_k)[None, :], torch.tensor(lens)[:, None]
            allowed = j < n
            if window:
                allowed &= j > n - 1 - window
            mask = allowed.view(len(seqs), 1, 1, padded_k).to(self.device, non_blocking=True)
        cos, sin = self._rope(positions)
        meta = AttentionMetadata(slot_mapping, kv_gather, mask, None, None, cos, sin, len(seqs), 1, bs)
        logits_index = torch.arange(len(seqs), device=self.device)
        return input_ids, positions, meta, logits_index

    def _prepare_prefill(self, seqs: list[Sequence]):
        bs = self.block_size
        B = len(seqs)
        ids, pos, slots, q_gather, out_index, last, q_pos = [], [], [], [], [], [], []
        lens = [s.num_tokens for s in seqs]
        max_k = max(lens)
        max_q = max(s.num_tokens - s.num_computed_tokens for s in seqs)
        for b, s in enumerate(seqs):
            start, n = s.num_computed_tokens, s.num_tokens
            offset = len(ids)
            ids.extend(s.token_ids[start:])
            pos.extend(range(start, n))
            table = s.block_table
            slots.extend(table[p // bs] * bs + p % bs for p in range(start, n))
            q = n - start
            q_gather.extend(range(offset, offset + q))
            q_gather.extend([offset + q - 1] * (max_q - q))
            q_pos.append(list(range(start, n)) + [n - 1] * (max_q - q))
            out_index.extend(range(b * max_q, b * max_q + q))
            last.append(len(ids) - 1)
        positions = self._tensor(pos)
        q_positions = torch.tensor(q_pos)  # [B, max_q]
        kv_gather, max_k = self._block_tables(seqs, max_k)
        j = torch.arange(max_k)[None, None, :]
        allowed = j <= q_positions[:, :, None]  # [B, max_q, max_k]
        if self.model.sliding_window:
            allowed &= j > q_positions[:, :, None] - self.model.sliding_window
        G = self.model.group
        mask = allowed[:, None, None].expand(B, 1, G, max_q, max_k).reshape(B, 1, G * max_q, max_k)
        cos, sin = self._rope(positions)
        meta = AttentionMetadata(
            slot_mapping=self._tensor(slots),
            kv_gather=kv_gather,
            mask=mask.to(self.device, non_blocking=True),
            q_gather=self._tensor(q_gather), out_index=self._tensor(out_index),
            cos=cos, sin=sin, batch_size=B, max_q=max_q, block_size=bs)
        return self._tensor(ids), positions, meta, self._tensor(last)


class HFModelRunner:
    """Fallback for architectures without an own implementation: transformers' model, full recompute per step."""

    def __init__(self, model_dir: str, device: torch.device, dtype: torch.dtype) -> None:
        from transformers import AutoModelForCausalLM

        self.model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype).to(device).eval()
        self.device = device

    @torch.inference_mode()
    def run(self, seqs: list[Sequence], is_prefill: bool) -> torch.Tensor:
        rows = [self.model(input_ids=torch.tensor([s.token_ids], device=self.device)).logits[0, -1] for s in seqs]
        return torch.stack(rows).float()
