"""Writes small GGUF files the way llama.cpp's converter does (tests only): HF weights in, quantized GGUF out."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

# HF tensor name (inside model.layers.N.) -> GGUF block tensor name
_BLOCK = {"input_layernorm": "attn_norm", "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k",
          "self_attn.v_proj": "attn_v", "self_attn.o_proj": "attn_output", "self_attn.q_norm": "attn_q_norm",
          "self_attn.k_norm": "attn_k_norm", "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up",
          "mlp.down_proj": "ffn_down"}
_LLAMA = {**_BLOCK, "post_attention_layernorm": "ffn_norm"}
_GEMMA = {**_BLOCK, "pre_feedforward_layernorm": "ffn_norm", "post_attention_layernorm": "post_attention_norm",
          "post_feedforward_layernorm": "post_ffw_norm"}
_TOP = {"model.embed_tokens": "token_embd", "model.norm": "output_norm", "lm_head": "output"}


def gguf_name(arch: str, hf_name: str) -> str:
    base, suffix = hf_name.rsplit(".", 1)
    if base in _TOP:
        return f"{_TOP[base]}.{suffix}"
    _, _, layer, rest = base.split(".", 3)
    return f"blk.{layer}.{(_GEMMA if arch == 'gemma3' else _LLAMA)[rest]}.{suffix}"


def permute(w: np.ndarray, heads: int) -> np.ndarray:
    """convert_hf_to_gguf.py's LlamaModel.permute (q/k rows regrouped for llama.cpp's rope)."""
    return w.reshape(heads, 2, w.shape[0] // heads // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def tokenizer_tokens(vocab_size: int) -> tuple[list[str], list[float], list[int]]:
    """A sentencepiece-style vocabulary: specials, 256 byte tokens, then word pieces."""
    tokens = ["<pad>", "<eos>", "<bos>", "<unk>"] + [f"<0x{b:02X}>" for b in range(256)]
    types = [3, 3, 3, 2] + [6] * 256
    words = [f"\u2581{chr(97 + i % 26)}{i // 26 or ''}" for i in range(vocab_size - len(tokens))]
    return tokens + words, [0.0] * 260 + [-float(i) for i in range(len(words))], types + [1] * len(words)


def write_gguf(path: Path, arch: str, model, types: dict[str, int], extra: dict | None = None) -> None:
    """Quantize `model`'s weights into a GGUF (types: GGUF tensor-name part -> ggml type, default F32), then load
    the dequantized values back into `model` so it is the exact reference for the file."""
    import gguf
    from gguf.quants import dequantize, quantize

    cfg = model.config
    head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
    writer = gguf.GGUFWriter(str(path), arch)
    writer.add_uint32(f"{arch}.context_length", cfg.max_position_embeddings)
    writer.add_uint32(f"{arch}.embedding_length", cfg.hidden_size)
    writer.add_uint32(f"{arch}.block_count", cfg.num_hidden_layers)
    writer.add_uint32(f"{arch}.feed_forward_length", cfg.intermediate_size)
    writer.add_uint32(f"{arch}.attention.head_count", cfg.num_attention_heads)
    writer.add_uint32(f"{arch}.attention.head_count_kv", cfg.num_key_value_heads)
    writer.add_uint32(f"{arch}.attention.key_length", head_dim)
    writer.add_uint32(f"{arch}.attention.value_length", head_dim)
    writer.add_float32(f"{arch}.attention.layer_norm_rms_epsilon", cfg.rms_norm_eps)
    for key, value in (extra or {}).items():
        (writer.add_float32 if isinstance(value, float) else writer.add_uint32)(f"{arch}.{key}", value)
    tokens, scores, token_types = tokenizer_tokens(cfg.vocab_size)
    writer.add_tokenizer_model("llama")
    writer.add_token_list(tokens)
    writer.add_token_scores(scores)
    writer.add_token_types(token_types)
    for key, value in (("bos_token_id", 2), ("eos_token_id", 1), ("unknown_token_id", 3), ("padding_token_id", 0)):
        writer.add_uint32(f"tokenizer.ggml.{key}", value)
    state = model.state_dict()
    for name, tensor in state.items():
        if name == "lm_head.weight" and cfg.tie_word_embeddings:
            continue
        w = tensor.detach().float().numpy()
        gname = gguf_name(arch, name)
        if arch == "gemma3" and name.endswith("norm.weight"):
            w = w + np.float32(1.0)
        qtype = gguf.GGMLQuantizationType(types.get(gname.split(".")[-2], gguf.GGMLQuantizationType.F32))
        data = w if qtype == gguf.GGMLQuantizationType.F32 else quantize(w, qtype)
        # quantization blocks lie within rows, so permuting rows commutes with it: the reference stays unpermuted
        back = dequantize(data, qtype).reshape(w.shape).astype(np.float32)
        heads = {"q_proj": cfg.num_attention_heads, "k_proj": cfg.num_key_value_heads}.get(name.split(".")[-2])
        if arch == "llama" and heads:
            data = permute(data, heads)
        writer.add_tensor(gname, data, raw_dtype=None if qtype == gguf.GGMLQuantizationType.F32 else qtype)
        if arch == "gemma3" and name.endswith("norm.weight"):
            back = back - np.float32(1.0)
        with torch.no_grad():
            tensor.copy_(torch.from_numpy(np.ascontiguousarray(back)))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()

