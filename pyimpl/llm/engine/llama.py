"""Own torch implementation of the Llama family (Llama, Mistral, Qwen2, Qwen3) over a paged KV cache."""
from __future__ import annotations

import glob
import json
import os
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from safetensors import safe_open

SUPPORTED_ARCHITECTURES = ("LlamaForCausalLM", "MistralForCausalLM", "Qwen2ForCausalLM", "Qwen3ForCausalLM")


@dataclass
class AttentionMetadata:
    """Per-step indices shared by every layer: where new K/V go and which cache slots each sequence attends to."""

    slot_mapping: torch.Tensor  # [T] cache slot of each new token
    kv_gather: torch.Tensor  # [B, max_blocks] KV blocks each sequence reads (padded with block 0)
    mask: torch.Tensor | None  # [B, 1, group*max_q, max_blocks*block_size] bool, None when nothing is masked
    q_gather: torch.Tensor | None  # [B*max_q] token index per padded query row (None: decode, one token per seq)
    out_index: torch.Tensor | None  # [T] padded row of each token (None: decode)
    cos: torch.Tensor  # [T, 1, head_dim]
    sin: torch.Tensor
    batch_size: int
    max_q: int
    block_size: int


@dataclass
class LayerWeights:
    input_norm: torch.Tensor
    qkv: torch.Tensor
    qkv_bias: torch.Tensor | None
    q_norm: torch.Tensor | None
    k_norm: torch.Tensor | None
    o_proj: torch.Tensor
    post_norm: torch.Tensor
    gate_up: torch.Tensor
    down: torch.Tensor


class LlamaModel:
    """Weights plus a forward over flattened tokens; attention reads/writes the caller's paged KV cache."""

    def __init__(self, config, weights: dict[str, torch.Tensor], device: torch.device, dtype: torch.dtype,
                 max_positions: int) -> None:
        self.num_layers = config.num_hidden_layers
        self.num_heads = config.num_attention_heads
        self.num_kv_heads = getattr(config, "num_key_value_heads", None) or self.num_heads
        self.head_dim = getattr(config, "head_dim", None) or config.hidden_size // self.num_heads
        self.group = self.num_heads // self.num_kv_heads
        self.eps = config.rms_norm_eps
        self.scale = self.head_dim ** -0.5
        self.dtype = dtype
        self.device = device
        self.sliding_window = sliding_window_of(config)
        w = {k: v.to(device=device, dtype=dtype) for k, v in weights.items()}
        self.embed = w["model.embed_tokens.weight"]
        self.lm_head = w.get("lm_head.weight", self.embed) if not getattr(config, "tie_word_embeddings", False) \
            else self.embed
        self.norm = w["model.norm.weight"]
        self.layers = []
        for i in range(self.num_layers):
            p = f"model.layers.{i}."
            a = p + "self_attn."
            biases = [w.get(a + f"{n}_proj.bias") for n in "qkv"]
            self.layers.append(LayerWeights(
                input_norm=w[p + "input_layernorm.weight"],
                qkv=torch.cat([w[a + f"{n}_proj.weight"] for n in "qkv"]),
                qkv_bias=torch.cat(biases) if all(b is not None for b in biases) else None,
                q_norm=w.get(a + "q_norm.weight"),
                k_norm=w.get(a + "k_norm.weight"),
                o_proj=w[a + "o_proj.weight"],
                post_norm=w[p + "post_attention_layernorm.weight"],
                gate_up=torch.cat([w[p + "mlp.gate_proj.weight"], w[p + "mlp.up_proj.weight"]]),
                down=w[p + "mlp.down_proj.weight"],
            ))
        self.q_size = self.num_heads * self.head_dim
        self.kv_size = self.num_kv_heads * self.head_dim
        self.cos, self.sin = rope_tables(config, self.head_dim, max_positions, device, dtype)

    def forward(self, input_ids: torch.Tensor, meta: AttentionMetadata, kv_cache: torch.Tensor,
                logits_index: torch.Tensor) -> torch.Tensor:
        """Run the new tokens through the model; returns float32 logits of the rows in `logits_index`."""
        x = F.embedding(input_ids, self.embed)
        T = x.shape[0]
        H, KVH, D, eps = self.num_heads, self.num_kv_heads, self.head_dim, self.eps
        for i, lw in enumerate(self.layers):
            h = F.rms_norm(x, (x.shape[-1],), lw.input_norm, eps)
            qkv = F.linear(h, lw.qkv, lw.qkv_bias)
            q, k, v = qkv.split([self.q_size, self.kv_size, self.kv_size], dim=-1)
            q = q.view(T, H, D)
            k = k.view(T, KVH, D)
            if lw.q_norm is not None:
                q = F.rms_norm(q, (D,), lw.q_norm, eps)
                k = F.rms_norm(k, (D,), lw.k_norm, eps)
            q = apply_rope(q, meta.cos, meta.sin)
            k = apply_rope(k, meta.cos, meta.sin)
            k_cache, v_cache = kv_cache[i, 0], kv_cache[i, 1]
            k_cache.index_copy_(0, meta.slot_mapping, k)
            v_cache.index_copy_(0, meta.slot_mapping, v.view(T, KVH, D))
            o = self.attention(q, k_cache, v_cache, meta)
            x = x + F.linear(o, lw.o_proj)
            h = F.rms_norm(x, (x.shape[-1],), lw.post_norm, eps)
            gate, up = F.linear(h, lw.gate_up).chunk(2, dim=-1)
            x = x + F.linear(F.silu(gate) * up, lw.down)
        x = x.index_select(0, logits_index) if logits_index.numel() != T else x
        x = F.rms_norm(x, (x.shape[-1],), self.norm, eps)
        return F.linear(x, self.lm_head).float()

    def attention(self, q: torch.Tensor, k_cache: torch.Tensor, v_cache: torch.Tensor,
                  meta: AttentionMetadata) -> torch.Tensor:
        """Grouped-query attention of each sequence's queries over its cached keys (queries grouped per KV head)."""
        B, max_blocks = meta.kv_gather.shape
        KVH, G, D, Q = self.num_kv_heads, self.group, self.head_dim, meta.max_q
        flat = meta.kv_gather.view(-1)
        # Gather whole blocks (few large rows copy faster than many slot-sized ones).
        keys = k_cache.view(-1, meta.block_size, KVH, D).index_select(0, flat).view(B, -1, KVH, D).transpose(1, 2)
        values = v_cache.view(-1, meta.block_size, KVH, D).index_select(0, flat).view(B, -1, KVH, D).transpose(1, 2)
        if meta.q_gather is None:  # decode: one query per sequence
            qg = q.view(B, KVH, G, D)
            o = F.scaled_dot_product_attention(qg, keys, values, attn_mask=meta.mask, scale=self.scale)
            return o.reshape(B, KVH * G * D)
        qg = q.index_select(0, meta.q_gather).view(B, Q, KVH, G, D).permute(0, 2, 3, 1, 4).reshape(B, KVH, G * Q, D)
        o = F.scaled_dot_product_attention(qg, keys, values, attn_mask=meta.mask, scale=self.scale)
        o = o.view(B, KVH, G, Q, D).permute(0, 3, 1, 2, 4).reshape(B * Q, KVH * G * D)
        return o.index_select(0, meta.out_index)


def sliding_window_of(config) -> int | None:
    """Attention window in tokens when every layer uses one (Mistral-style configs), else None."""
    window = getattr(config, "sliding_window", None)
    if not window or getattr(config, "use_sliding_window", True) is False:
        return None
    layer_types = getattr(config, "layer_types", None)
    if layer_types and any(t != "sliding_attention" for t in layer_types):
        return None  # mixed full/sliding layers: not supported by the shared mask (full attention is used)
    return int(window)


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotary embedding, rotate-half convention (as HF's Llama)."""
    x1, x2 = x.chunk(2, dim=-1)
    return x * cos + torch.cat((-x2, x1), dim=-1) * sin


def rope_tables(config, head_dim: int, max_positions: int, device, dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """cos/sin tables [max_positions, head_dim] with the config's rope scaling (via transformers' init functions)."""
    params = getattr(config, "rope_parameters", None) or getattr(config, "rope_scaling", None) or {}
    rope_type = params.get("rope_type", params.get("type", "default"))
    theta = params.get("rope_theta", getattr(config, "rope_theta", 10000.0))
    scaling = 1.0
    if rope_type in (None, "default"):
        inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.float) / head_dim))
    else:
        from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS
        inv_freq, scaling = ROPE_INIT_FUNCTIONS[rope_type](config, "cpu")
    pos = torch.arange(max_positions, dtype=torch.float)
    freqs = torch.outer(pos, inv_freq.float())
    emb = torch.cat((freqs, freqs), dim=-1)
    return ((emb.cos() * scaling).to(device=device, dtype=dtype),
            (emb.sin() * scaling).to(device=device, dtype=dtype))


def load_safetensors(model_dir: str) -> dict[str, torch.Tensor]:
    """All tensors of a HF model folder's *.safetensors files (sharded or not)."""
    files = sorted(glob.glob(os.path.join(model_dir, "*.safetensors")))
    index = os.path.join(model_dir, "model.safetensors.index.json")
    if os.path.exists(index):
        with open(index) as f:
            files = sorted({os.path.join(model_dir, v) for v in json.load(f)["weight_map"].values()})
    if not files:
        raise FileNotFoundError(f"no *.safetensors weights in {model_dir}")
    weights: dict[str, torch.Tensor] = {}
    for path in files:
        with safe_open(path, framework="pt") as f:
            for name in f.keys():
                weights[name] = f.get_tensor(name)
    return weights
