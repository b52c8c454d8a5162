"""Own torch implementation of Gemma 3 (text) over the paged KV cache, as transformers' Gemma3ForCausalLM computes it.

Interleaved sliding-window and global layers (per-layer window and RoPE base), q/k RMS norms, (1 + w) RMSNorm in
float32, four norms per layer, GELU-tanh MLP, embeddings scaled by sqrt(hidden), query_pre_attn_scalar, optional
attention and final logit soft-capping.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .attention import AttentionMetadata, paged_attention, write_kv
from .llama import apply_rope, lm_head_logits

SLIDING = "sliding_attention"


@dataclass
class Gemma3Layer:
    input_norm: torch.Tensor  # (1 + w), float32
    qkv: torch.Tensor
    q_norm: torch.Tensor
    k_norm: torch.Tensor
    o_proj: torch.Tensor
    post_attn_norm: torch.Tensor
    pre_ffn_norm: torch.Tensor
    gate_up: torch.Tensor
    down: torch.Tensor
    post_ffn_norm: torch.Tensor
    sliding: bool


class Gemma3Model:
    """Weights (HF names and conventions) plus a forward over flattened tokens (the CausalLM seam)."""

    def __init__(self, config, weights: dict[str, torch.Tensor], device: torch.device, dtype: torch.dtype,
                 max_positions: int) -> None:
        self.num_layers = config.num_hidden_layers
        self.num_heads = config.num_attention_heads
        self.num_kv_heads = config.num_key_value_heads
        self.head_dim = config.head_dim
        self.hidden = config.hidden_size
        self.eps = config.rms_norm_eps
        self.dtype, self.device = dtype, device
        self.scale = float(config.query_pre_attn_scalar) ** -0.5
        self.window = int(config.sliding_window) if getattr(config, "sliding_window", None) else None
        self.attn_softcap = getattr(config, "attn_logit_softcapping", None)
        self.final_softcap = getattr(config, "final_logit_softcapping", None)
        layer_types = getattr(config, "layer_types", None) or [SLIDING] * self.num_layers
        self.rope = {t: _inv_freq(config, t, self.head_dim) for t in set(layer_types)}

        def w(name: str) -> torch.Tensor:
            if name not in weights:
                raise ValueError(f"Gemma 3 weights: {name} is missing")
            return weights[name].to(device=device, dtype=dtype)

        def norm(name: str) -> torch.Tensor:
            return 1.0 + w(name).to(torch.float32)

        self.embed = w("model.embed_tokens.weight")
        self.embed_scale = torch.tensor(self.hidden ** 0.5, dtype=dtype).item()
        self.lm_head = weights["lm_head.weight"].to(device=device, dtype=dtype) \
            if "lm_head.weight" in weights and not getattr(config, "tie_word_embeddings", True) else self.embed
        self.norm = norm("model.norm.weight")
        self.layers = []
        for i in range(self.num_layers):
            p, a = f"model.layers.{i}.", f"model.layers.{i}.self_attn."
            self.layers.append(Gemma3Layer(
                input_norm=norm(p + "input_layernorm.weight"),
                qkv=torch.cat([w(a + f"{n}_proj.weight") for n in "qkv"]),
                q_norm=norm(a + "q_norm.weight"), k_norm=norm(a + "k_norm.weight"),
                o_proj=w(a + "o_proj.weight"),
                post_attn_norm=norm(p + "post_attention_layernorm.weight"),
                pre_ffn_norm=norm(p + "pre_feedforward_layernorm.weight"),
                gate_up=torch.cat([w(p + "mlp.gate_proj.weight"), w(p + "mlp.up_proj.weight")]),
                down=w(p + "mlp.down_proj.weight"),
                post_ffn_norm=norm(p + "post_feedforward_layernorm.weight"),
                sliding=layer_types[i] == SLIDING and self.window is not None))
        self.layer_types = layer_types
        self.q_size = self.num_heads * self.head_dim
        self.kv_size = self.num_kv_heads * self.head_dim

    def _rms(self, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        """Gemma's RMSNorm: in float32, times (1 + w), back to the activations' dtype."""
        return F.rms_norm(x.float(), (x.shape[-1],), weight, self.eps).to(x.dtype)

    def _rotary(self, positions: torch.Tensor) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """cos/sin [T, 1, D] per layer type, computed in float32 from the step's positions (as HF does)."""
        out = {}
        for kind, (inv_freq, scaling) in self.rope.items():
            freqs = positions.to(torch.float32)[:, None] * inv_freq.to(positions.device)[None, :]
            emb = torch.cat((freqs, freqs), dim=-1)
            out[kind] = ((emb.cos() * scaling).to(self.dtype).unsqueeze(1),
                         (emb.sin() * scaling).to(self.dtype).unsqueeze(1))
        return out

    def forward(self, input_ids: torch.Tensor, meta: AttentionMetadata, kv_cache: torch.Tensor,
                logits_index: torch.Tensor) -> torch.Tensor:
        """Run the new tokens through the model; returns float32 logits of the rows in `logits_index`."""
        x = F.embedding(input_ids, self.embed) * self.embed_scale
        T = x.shape[0]
        H, KVH, D = self.num_heads, self.num_kv_heads, self.head_dim
        rotary = self._rotary(meta.positions)
        for i, lw in enumerate(self.layers):
            h = self._rms(x, lw.input_norm)
            q, k, v = F.linear(h, lw.qkv).split([self.q_size, self.kv_size, self.kv_size], dim=-1)
            q = self._rms(q.view(T, H, D), lw.q_norm)
            k = self._rms(k.view(T, KVH, D), lw.k_norm)
            cos, sin = rotary[self.layer_types[i]]
            q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
            write_kv(kv_cache, i, k, v.view(T, KVH, D), meta)
            o = paged_attention(q, kv_cache, i, meta, self.scale,
                                self.window if lw.sliding else None, self.attn_softcap)
            x = x + self._rms(F.linear(o, lw.o_proj), lw.post_attn_norm)
            h = self._rms(x, lw.pre_ffn_norm)
            gate, up = F.linear(h, lw.gate_up).chunk(2, dim=-1)
            h = F.linear(F.gelu(gate, approximate="tanh") * up, lw.down)
            x = x + self._rms(h, lw.post_ffn_norm)
        x = x.index_select(0, logits_index) if logits_index.numel() != T else x
        logits = lm_head_logits(self._rms(x, self.norm), self.lm_head)
        if self.final_softcap:
            logits = torch.tanh(logits / self.final_softcap) * self.final_softcap
        return logits


def _inv_freq(config, layer_type: str, head_dim: int) -> tuple[torch.Tensor, float]:
    """RoPE inverse frequencies and attention scaling of one layer type (transformers 5 or 4 config shapes)."""
    params = getattr(config, "rope_parameters", None)
    if isinstance(params, dict) and isinstance(params.get(layer_type), dict):
        p = params[layer_type]
    elif layer_type == SLIDING:  # transformers 4.x: local layers use rope_local_base_freq, unscaled
        p = {"rope_type": "default", "rope_theta": getattr(config, "rope_local_base_freq", 10000.0)}
    else:
        p = {**(getattr(config, "rope_scaling", None) or {}), "rope_theta": getattr(config, "rope_theta", 10000.0)}
    kind = p.get("rope_type", p.get("type", "default"))
    theta = float(p.get("rope_theta", 10000.0))
    inv = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.int64).float() / head_dim))
    if kind == "default":
        return inv, 1.0
    if kind == "linear":
        return inv / float(p["factor"]), 1.0
    from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS
    try:
        inv, scaling = ROPE_INIT_FUNCTIONS[kind](config, "cpu", layer_type=layer_type)
    except TypeError:  # transformers 4.x: no per-layer-type parameters
        inv, scaling = ROPE_INIT_FUNCTIONS[kind](config, "cpu")
    return inv.float(), float(scaling)
