"""The seam between the engine and a model implementation: what the model runner needs from any causal LM."""
from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch

from .attention import AttentionMetadata


@runtime_checkable
class CausalLM(Protocol):
    """A decoder over flattened new tokens that reads/writes a paged KV cache [layers, 2, KVH, num_slots, D]
    (head-major; a model passes kv_cache and its layer index to write_kv and paged_attention, nothing more).

    The model computes its own rotary tables from meta.positions (so it may use per-layer RoPE bases)."""

    num_layers: int
    num_kv_heads: int
    head_dim: int
    dtype: torch.dtype
    device: torch.device

    def forward(self, input_ids: torch.Tensor, meta: AttentionMetadata, kv_cache: torch.Tensor,
                logits_index: torch.Tensor) -> torch.Tensor:
        """input_ids [T] of this step; returns float32 logits [len(logits_index), vocab] of those rows."""
        ...
