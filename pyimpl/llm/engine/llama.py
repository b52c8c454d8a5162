"""Own torch implementation of the Llama family (Llama, Mistral, Qwen2, Qwen3) over a paged KV cache."""
from __future__ import annotations

import glob
import json
import os
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from safetensors import safe_open

from .attention import AttentionMetadata, paged_attention, write_kv

SUPPORTED_ARCHITECTURES = ("LlamaForCausalLM", "MistralForCausalLM", "Qwen2ForCausalLM", "Qwen3ForCausalLM")


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
        self.sliding_windows = sliding_windows_of(config)
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
        cos = self.cos.index_select(0, meta.positions).unsqueeze(1)
        sin = self.sin.index_select(0, meta.positions).unsqueeze(1)
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
            q = apply_rope(q, cos, sin)
            k = apply_rope(k, cos, sin)
            write_kv(kv_cache, i, k, v.view(T, KVH, D), meta)
            o = paged_attention(q, kv_cache, i, meta, self.scale, self.sliding_windows[i])
            x = x + F.linear(o, lw.o_proj)
            h = F.rms_norm(x, (x.shape[-1],), lw.post_norm, eps)
            gate, up = F.linear(h, lw.gate_up).chunk(2, dim=-1)
            x = x + F.linear(F.silu(gate) * up, lw.down)
        x = x.index_select(0, logits_index) if logits_index.numel() != T else x
        x = F.rms_norm(x, (x.shape[-1],), self.norm, eps)
        return lm_head_logits(x, self.lm_head)


def sliding_windows_of(config) -> list[int | None]:
    """Attention window of each layer (None: full attention); mixed configs (layer_types) are honoured per layer."""
    n = config.num_hidden_layers
    window = getattr(config, "sliding_window", None)
    if not window or getattr(config, "use_sliding_window", True) is False:
        return [None] * n
    layer_types = getattr(config, "layer_types", None) or ["sliding_attention"] * n
    return [int(window) if t == "sliding_attention" else None for t in layer_types]


def lm_head_logits(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """float32 logits [rows, vocab] of hidden rows x against the vocab-major weight [vocab, hidden], computed as
    (weight @ x^T)^T: for a few rows against a big vocabulary, the BLAS's gemm in this orientation streams the
    weight once where F.linear's takes up to 2x longer (on CPU, 2-8 rows: 57 vs 127 ms for Gemma 3's 262k vocab)."""
    return (weight @ x.t()).t().float().contiguous()


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
