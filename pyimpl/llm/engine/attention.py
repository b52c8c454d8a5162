"""Paged attention without padding: batched decode rows plus per-sequence (varlen) prefill chunks over the KV cache.

One code path for CPU and CUDA; masks (only where a chunk needs one) are built on the cache's device. A layer's
cache is head-major, [KVH, num_slots, D]: a block of one head is one contiguous bs x D run, and a prefill chunk
whose blocks are contiguous reads its keys as a view. Decode rows read the step's decode rows (decode_rows.py:
one contiguous [KVH, capacity, D] row per decoding sequence, written here with the paged cache) in place; without
them (over their memory budget) decode gathers whole block runs into the [KVH, B, keys, D] layout its matmuls read.
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
    blocks: torch.Tensor | None  # [ceil(k_len / block_size)] cache blocks of the keys (None when contiguous)
    slot_start: int | None = None  # first slot when the sequence's blocks are contiguous (keys read as a view)


@dataclass
class DecodeGroup:
    """One-token chunks of similar length, rows [row_start, row_start+rows): batched over their padded blocks."""

    row_start: int
    rows: int
    blocks: torch.Tensor | None  # [rows, max_blocks] KV blocks per row (padded with block 0); None in decode rows
    lens: torch.Tensor  # [rows] keys visible to each row
    max_len: int
    min_len: int


@dataclass
class AttentionMetadata:
    """Per-step indices shared by every layer: one-token chunks (decode groups) first, then prefill segments."""

    positions: torch.Tensor  # [T] long, absolute position of each new token
    slot_mapping: torch.Tensor  # [T] cache slot of each new token
    block_size: int = 16
    decodes: list[DecodeGroup] = field(default_factory=list)
    prefills: list[PrefillSegment] = field(default_factory=list)
    decode_rows: torch.Tensor | None = None  # [L, 2, rows, KVH, capacity, D]: decode i reads row i (DecodeRows)
    decode_index: torch.Tensor | None = None  # [decodes * KVH] flat (row, head, position) of each decode's new K/V
    _masks: dict = field(default_factory=dict, repr=False)  # (kind, index, ...) -> mask or buffer, reused by every layer


def write_kv(kv_cache: torch.Tensor, layer: int, k: torch.Tensor, v: torch.Tensor, meta: AttentionMetadata) -> None:
    """Store the step's new K/V ([T, KVH, D]) into layer `layer` of the cache ([L, 2, KVH, num_slots, D]) at
    meta.slot_mapping, and the decodes' (the first rows) into their decode rows."""
    kv_cache[layer, 0].index_copy_(1, meta.slot_mapping, k.transpose(0, 1))
    kv_cache[layer, 1].index_copy_(1, meta.slot_mapping, v.transpose(0, 1))
    if meta.decode_rows is not None:
        n = meta.decode_index.numel()
        D = k.shape[-1]
        meta.decode_rows[layer, 0].view(-1, D).index_copy_(0, meta.decode_index, k.reshape(-1, D)[:n])
        meta.decode_rows[layer, 1].view(-1, D).index_copy_(0, meta.decode_index, v.reshape(-1, D)[:n])


def paged_attention(q: torch.Tensor, kv_cache: torch.Tensor, layer: int, meta: AttentionMetadata, scale: float,
                    sliding_window: int | None = None, softcap: float | None = None) -> torch.Tensor:
    """Causal attention of q [T, H, D] over each sequence's cached keys in layer `layer` of the cache; returns
    [T, H*D].

    With a sliding window a query at position p sees keys at positions > p - window (HF semantics)."""
    T, H, D = q.shape
    k_cache, v_cache = kv_cache[layer, 0], kv_cache[layer, 1]
    rows = None if meta.decode_rows is None else (meta.decode_rows[layer, 0], meta.decode_rows[layer, 1])
    if len(meta.decodes) == 1 and not meta.prefills:
        group = meta.decodes[0]
        if rows is not None:
            return _decode_rows(q, rows[0], rows[1], group, 0, meta, scale, sliding_window, softcap)
        return _decode(q, k_cache, v_cache, group, 0, meta, scale, sliding_window, softcap)
    out = q.new_empty(T, H * D)
    for i, group in enumerate(meta.decodes):
        sel = slice(group.row_start, group.row_start + group.rows)
        if rows is not None:
            out[sel] = _decode_rows(q[sel], rows[0], rows[1], group, i, meta, scale, sliding_window, softcap)
        else:
            out[sel] = _decode(q[sel], k_cache, v_cache, group, i, meta, scale, sliding_window, softcap)
    for i, seg in enumerate(meta.prefills):
        rows = slice(seg.q_start, seg.q_start + seg.q_len)
        out[rows] = _prefill(q[rows], k_cache, v_cache, seg, i, meta, scale, sliding_window, softcap)
    return out


def _decode_rows(q, k_rows, v_rows, group: DecodeGroup, index: int, meta: AttentionMetadata, scale, window,
                 softcap) -> torch.Tensor:
    """One query per sequence over its decode row (rows [row_start, row_start+rows) of [R, KVH, capacity, D]),
    read in place: the G query heads of a KV head are its query rows, keys past a row's length are masked."""
    B, H, D = q.shape
    KVH = k_rows.shape[1]
    K = group.max_len
    rows = slice(group.row_start, group.row_start + B)
    keys = k_rows[rows, :, :K].reshape(B * KVH, K, D)  # a view: rows x heads share one stride
    values = v_rows[rows, :, :K].reshape(B * KVH, K, D)
    queries = (q * scale).view(B * KVH, H // KVH, D)
    scores = torch.bmm(queries, keys.transpose(1, 2)).float().view(B, H, K)
    if softcap is not None:
        scores = torch.tanh(scores / softcap) * softcap
    if group.min_len != K or (window and K > window):
        key = ("decode-rows", index, window)
        bias = meta._masks.get(key)
        if bias is None:
            j = torch.arange(K, device=q.device)[None, :]
            n = group.lens[:, None]
            allowed = j < n
            if window:
                allowed &= j > n - 1 - window
            bias = meta._masks[key] = torch.zeros(B, 1, K, device=q.device).masked_fill(
                ~allowed.view(B, 1, K), float("-inf"))
        scores = scores + bias
    probs = scores.softmax(-1).to(values.dtype).view(B * KVH, H // KVH, K)
    return torch.bmm(probs, values).view(B, H * D)


def _decode(q, k_cache, v_cache, group: DecodeGroup, index: int, meta: AttentionMetadata, scale, window,
            softcap) -> torch.Tensor:
    """One query per sequence; the G query heads of a KV head form its query rows (keys are never expanded).

    Plain matmuls with a float32 softmax: on CPU several times faster than SDPA's kernel for one-token queries."""
    B, H, D = q.shape
    KVH = k_cache.shape[0]
    nb = group.blocks.shape[1]
    bs = meta.block_size
    flat = group.blocks.reshape(-1)
    buffers = meta._masks.get(("gather", index))  # one pair per group, refilled by every layer (no allocation)
    if buffers is None or buffers[0].dtype != k_cache.dtype:
        buffers = meta._masks[("gather", index)] = (k_cache.new_empty(KVH, B * nb, bs, D),
                                                    v_cache.new_empty(KVH, B * nb, bs, D))
    keys = torch.index_select(k_cache.view(KVH, -1, bs, D), 1, flat, out=buffers[0]).view(KVH, B, nb * bs, D)
    values = torch.index_select(v_cache.view(KVH, -1, bs, D), 1, flat, out=buffers[1]).view(KVH, B, nb * bs, D)
    queries = (q * scale).view(B, KVH, H // KVH, D).transpose(0, 1)  # [KVH, B, G, D], scaled here (fewer elements)
    scores = torch.matmul(queries, keys.transpose(-1, -2)).float()  # [KVH, B, G, K]
    if softcap is not None:
        scores = torch.tanh(scores / softcap) * softcap
    if group.min_len != nb * bs or (window and group.max_len > window):
        key = ("decode", index, window)
        bias = meta._masks.get(key)
        if bias is None:
            j = torch.arange(nb * bs, device=q.device)[None, :]
            n = group.lens[:, None]
            allowed = j < n
            if window:
                allowed &= j > n - 1 - window
            bias = meta._masks[key] = torch.zeros(B, 1, nb * bs, device=q.device).masked_fill(
                ~allowed.view(B, 1, nb * bs), float("-inf"))
        scores = scores + bias
    probs = scores.softmax(-1).to(values.dtype)
    return torch.matmul(probs, values).transpose(0, 1).reshape(B, H * D)


def _prefill(q, k_cache, v_cache, seg: PrefillSegment, index: int, meta: AttentionMetadata, scale, window,
             softcap) -> torch.Tensor:
    """One sequence's chunk: SDPA over its own keys only (causal; a mask only when it has earlier context)."""
    L, H, D = q.shape
    first_key = 0
    if window and seg.k_len - seg.q_len - window + 1 > 0:  # keys older than the first query's window are never seen
        first_key = seg.k_len - seg.q_len - window + 1
    if seg.slot_start is not None:
        keys = k_cache[:, seg.slot_start + first_key:seg.slot_start + seg.k_len]
        values = v_cache[:, seg.slot_start + first_key:seg.slot_start + seg.k_len]
    else:
        KVH, bs = k_cache.shape[0], meta.block_size  # whole blocks gathered (runs of bs x D), then trimmed
        keys = k_cache.view(KVH, -1, bs, D).index_select(1, seg.blocks).view(KVH, -1, D)[:, first_key:]
        values = v_cache.view(KVH, -1, bs, D).index_select(1, seg.blocks).view(KVH, -1, D)[:, first_key:]
    K = seg.k_len - first_key
    causal_aligned = K == L and not (window and L > window)
    mask = None
    if L * K * H <= GROUPED_PREFILL_SCORES:  # gathered keys keep their last block's tail (masked): no strided copy
        return _grouped_prefill(q, keys, values, seg, index, meta, first_key, scale, window, softcap)
    keys, values = keys[:, :K], values[:, :K]
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
    o = _sdpa(q.transpose(0, 1), keys, values, mask, causal_aligned, scale, softcap, gqa=True)
    return o.transpose(0, 1).reshape(L, H * D)


GROUPED_PREFILL_SCORES = 1 << 22  # chunks with at most this many scores use grouped matmuls (16 MiB of fp32 scores)


def _grouped_prefill(q, keys, values, seg: PrefillSegment, index: int, meta: AttentionMetadata, first_key: int,
                     scale, window, softcap) -> torch.Tensor:
    """A small chunk as two batched matmuls per KV head, its G query heads stacked as rows (keys never expanded),
    with a float32 softmax under an additive mask: on CPU about 1.7x faster than SDPA for 64-300 query chunks."""
    L, H, D = q.shape
    KVH, K = keys.shape[0], keys.shape[1]
    G = H // KVH
    key = ("prefill-bias", index, window)
    bias = meta._masks.get(key)
    if bias is None:
        kpos = torch.arange(first_key, first_key + K, device=q.device)[None, :]  # K may pass k_len (masked)
        qpos = torch.arange(seg.k_len - L, seg.k_len, device=q.device)[:, None]
        allowed = kpos <= qpos
        if window:
            allowed &= kpos > qpos - window
        bias = meta._masks[key] = torch.zeros(L, K, device=q.device).masked_fill(~allowed, float("-inf"))
    queries = (q * scale).transpose(0, 1).reshape(KVH, G * L, D)  # head h = kvh * G + g -> rows g * L + l
    scores = torch.matmul(queries, keys.transpose(-1, -2)).float().view(KVH, G, L, K)
    if softcap is not None:
        scores = torch.tanh(scores / softcap) * softcap
    probs = (scores + bias).softmax(-1).to(values.dtype).view(KVH, G * L, K)
    return torch.matmul(probs, values).view(H, L, D).transpose(0, 1).reshape(L, H * D)


def _sdpa(q, k, v, mask, is_causal: bool, scale: float, softcap: float | None, gqa: bool = False) -> torch.Tensor:
    """SDPA, or explicit math when logits are soft-capped (tanh(s / cap) * cap before the mask)."""
    if gqa and k.shape[-3] != q.shape[-3]:  # expanded here: SDPA's enable_gqa takes the slow math path on CPU
        rep = q.shape[-3] // k.shape[-3]
        k, v = k.repeat_interleave(rep, dim=-3), v.repeat_interleave(rep, dim=-3)
    if softcap is None:  # 4-D inputs: CPU's flash kernel takes nothing else (3-D falls back to the math path)
        return F.scaled_dot_product_attention(q[None], k[None], v[None], attn_mask=mask, is_causal=is_causal,
                                              scale=scale)[0]
    s = torch.matmul(q.float(), k.float().transpose(-1, -2)) * scale
    s = torch.tanh(s / softcap) * softcap
    if is_causal:
        mask = torch.ones(s.shape[-2], s.shape[-1], dtype=torch.bool, device=s.device).tril()
    if mask is not None:
        s = s.masked_fill(~mask, float("-inf"))
    return torch.matmul(s.softmax(-1), v.float()).to(q.dtype)
