"""Paged attention without padding: batched decode rows plus per-sequence (varlen) prefill chunks over the KV cache.

One code path for CPU and CUDA: SDPA everywhere, masks (only where a chunk needs one) built on the cache's device.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F


@dataclass
class PrefillSegment:
    """One sequence's chunk of new tokens: rows [q_start, q_start+q_len) of the step, attending to k_len cached keys."""

    q_start: int
    q_len: int
    k_len: int  # keys visible to the chunk's last token (= its position + 1)
    slots: torch.Tensor | None  # [k_len] cache slots of the keys (None when `slot_start` gives a contiguous range)
    slot_start: int | None = None  # first slot when the sequence's blocks are contiguous (keys read as a view)


@dataclass
class AttentionMetadata:
    """Per-step indices shared by every layer; rows [0, num_decode) are one-token chunks, the rest prefill segments."""

    positions: torch.Tensor  # [T] long, absolute position of each new token
    slot_mapping: torch.Tensor  # [T] cache slot of each new token
    block_size: int = 16
    num_decode: int = 0
    decode_blocks: torch.Tensor | None = None  # [num_decode, max_blocks] KV blocks per decode row (padded with 0)
    decode_lens: torch.Tensor | None = None  # [num_decode] keys visible to each decode row
    decode_max_len: int = 0
    decode_min_len: int = 0
    prefills: list[PrefillSegment] = field(default_factory=list)
    _masks: dict = field(default_factory=dict, repr=False)  # (kind, index, window) -> mask, reused by every layer


def write_kv(k_cache: torch.Tensor, v_cache: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
             meta: AttentionMetadata) -> None:
    """Store the step's new K/V ([T, KVH, D]) into one layer's cache ([num_slots, KVH, D]) at meta.slot_mapping."""
    k_cache.index_copy_(0, meta.slot_mapping, k)
    v_cache.index_copy_(0, meta.slot_mapping, v)


def paged_attention(q: torch.Tensor, k_cache: torch.Tensor, v_cache: torch.Tensor, meta: AttentionMetadata,
                    scale: float, sliding_window: int | None = None, softcap: float | None = None) -> torch.Tensor:
    """Causal attention of q [T, H, D] over each sequence's cached keys; returns [T, H*D].

    With a sliding window a query at position p sees keys at positions > p - window (HF semantics)."""
    T, H, D = q.shape
    if meta.num_decode == T:
        return _decode(q, k_cache, v_cache, meta, scale, sliding_window, softcap)
    out = q.new_empty(T, H * D)
    if meta.num_decode:
        out[:meta.num_decode] = _decode(q[:meta.num_decode], k_cache, v_cache, meta, scale, sliding_window, softcap)
    for i, seg in enumerate(meta.prefills):
        rows = slice(seg.q_start, seg.q_start + seg.q_len)
        out[rows] = _prefill(q[rows], k_cache, v_cache, seg, i, meta, scale, sliding_window, softcap)
    return out


def _decode(q, k_cache, v_cache, meta: AttentionMetadata, scale, window, softcap) -> torch.Tensor:
    """One query per sequence; the G query heads of a KV head form its query rows (keys are never expanded)."""
    B, H, D = q.shape
    KVH = k_cache.shape[1]
    blocks = meta.decode_blocks
    nb = blocks.shape[1]
    bs = meta.block_size
    flat = blocks.reshape(-1)
    keys = k_cache.view(-1, bs, KVH, D).index_select(0, flat).view(B, nb * bs, KVH, D).transpose(1, 2)
    values = v_cache.view(-1, bs, KVH, D).index_select(0, flat).view(B, nb * bs, KVH, D).transpose(1, 2)
    mask = None
    if meta.decode_min_len != nb * bs or (window and meta.decode_max_len > window):
        key = ("decode", 0, window)
        mask = meta._masks.get(key)
        if mask is None:
            j = torch.arange(nb * bs, device=q.device)[None, :]
            n = meta.decode_lens[:, None]
            allowed = j < n
            if window:
                allowed &= j > n - 1 - window
            mask = meta._masks[key] = allowed.view(B, 1, 1, nb * bs)
    o = _sdpa(q.view(B, KVH, H // KVH, D), keys, values, mask, False, scale, softcap)
    return o.reshape(B, H * D)


def _prefill(q, k_cache, v_cache, seg: PrefillSegment, index: int, meta: AttentionMetadata, scale, window,
             softcap) -> torch.Tensor:
    """One sequence's chunk: SDPA over its own keys only (causal; a mask only when it has earlier context)."""
    L, H, D = q.shape
    first_key = 0
    if window and seg.k_len - seg.q_len - window + 1 > 0:  # keys older than the first query's window are never seen
        first_key = seg.k_len - seg.q_len - window + 1
    if seg.slot_start is not None:
        keys = k_cache[seg.slot_start + first_key:seg.slot_start + seg.k_len]
        values = v_cache[seg.slot_start + first_key:seg.slot_start + seg.k_len]
    else:
        slots = seg.slots[first_key:]
        keys, values = k_cache.index_select(0, slots), v_cache.index_select(0, slots)
    K = seg.k_len - first_key
    causal_aligned = K == L and not (window and L > window)
    mask = None
    if not causal_aligned:
        key = ("prefill", index, window)
        mask = meta._masks.get(key)
        if mask is None:
            kpos = torch.arange(first_key, seg.k_len, device=q.device)[None, :]
            qpos = torch.arange(seg.k_len - L, seg.k_len, device=q.device)[:, None]
            allowed = kpos <= qpos
            if window:
                allowed &= kpos > qpos - window
            mask = meta._masks[key] = allowed
    o = _sdpa(q.transpose(0, 1), keys.transpose(0, 1), values.transpose(0, 1), mask, causal_aligned, scale,
              softcap, gqa=True)
    return o.transpose(0, 1).reshape(L, H * D)


def _sdpa(q, k, v, mask, is_causal: bool, scale: float, softcap: float | None, gqa: bool = False) -> torch.Tensor:
    """SDPA, or explicit math when logits are soft-capped (tanh(s / cap) * cap before the mask)."""
    if softcap is None:
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=is_causal, scale=scale,
                                              enable_gqa=gqa)
    if gqa and k.shape[-3] != q.shape[-3]:
        rep = q.shape[-3] // k.shape[-3]
        k, v = k.repeat_interleave(rep, dim=-3), v.repeat_interleave(rep, dim=-3)
    s = torch.matmul(q.float(), k.float().transpose(-1, -2)) * scale
    s = torch.tanh(s / softcap) * softcap
    if is_causal:
        mask = torch.ones(s.shape[-2], s.shape[-1], dtype=torch.bool, device=s.device).tril()
    if mask is not None:
        s = s.masked_fill(~mask, float("-inf"))
    return torch.matmul(s.softmax(-1), v.float()).to(q.dtype)
