"""llama.cpp's GGUF names and conventions mapped back to Hugging Face's: config keys, tensor names, weight fix-ups.

The reversals mirror transformers' own GGUF loader (modeling_gguf_pytorch_utils.py): llama.cpp permutes the rows
of q/k projections for the llama architecture (undone here) and stores Gemma norm weights as 1 + w (we subtract 1,
so every model class reads HF-convention weights).
"""
from __future__ import annotations

import logging

import numpy as np

log = logging.getLogger(__name__)

# GGUF general.architecture -> (HF model_type, HF architecture class name)
ARCHITECTURES = {
    "llama": ("llama", "LlamaForCausalLM"),
    "mistral": ("mistral", "MistralForCausalLM"),
    "qwen2": ("qwen2", "Qwen2ForCausalLM"),
    "qwen3": ("qwen3", "Qwen3ForCausalLM"),
    "gemma3": ("gemma3_text", "Gemma3ForCausalLM"),
}
_PERMUTED_QK = ("llama", "mistral")  # llama.cpp's LlamaModel converter interleaves q/k rows for its rope kernel
_PLUS_ONE_NORMS = ("gemma3",)  # the converter stores Gemma's (1 + w) norm weights as the multiplier itself

_TOP = {"token_embd": "model.embed_tokens", "output_norm": "model.norm", "output": "lm_head"}
_BLOCK = {
    "attn_norm": "input_layernorm",
    "attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj", "attn_v": "self_attn.v_proj",
    "attn_output": "self_attn.o_proj", "attn_q_norm": "self_attn.q_norm", "attn_k_norm": "self_attn.k_norm",
    "ffn_norm": "post_attention_layernorm",  # llama family: the norm before the MLP
    "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj", "ffn_down": "mlp.down_proj",
}
_GEMMA_BLOCK = {**_BLOCK, "ffn_norm": "pre_feedforward_layernorm",
                "post_attention_norm": "post_attention_layernorm", "post_ffw_norm": "post_feedforward_layernorm"}
_IGNORED = ("rope_freqs",)  # llama 3.1 rope factors: transformers' loader ignores them too (see README)


def check_architecture(arch: str) -> None:
    """ValueError unless the engine has a model class for this GGUF architecture."""
    if arch not in ARCHITECTURES:
        raise ValueError(f"GGUF architecture {arch!r} is not supported; supported: {', '.join(ARCHITECTURES)}")


def hf_tensor_name(arch: str, gguf_name: str) -> str | None:
    """The HF state-dict name of a GGUF tensor (None for tensors the engine does not use)."""
    base, _, suffix = gguf_name.rpartition(".")
    if suffix not in ("weight", "bias"):
        base, suffix = gguf_name, "weight"
    if base in _TOP:
        return f"{_TOP[base]}.{suffix}"
    parts = base.split(".")
    if len(parts) == 3 and parts[0] == "blk" and parts[1].isdigit():
        table = _GEMMA_BLOCK if arch == "gemma3" else _BLOCK
        if parts[2] in table:
            return f"model.layers.{parts[1]}.{table[parts[2]]}.{suffix}"
    if base in _IGNORED:
        log.warning("GGUF tensor %s is ignored (as transformers does)", gguf_name)
        return None
    raise ValueError(f"GGUF tensor {gguf_name!r} has no place in the {arch} model")


def needs_fix(arch: str, hf_name: str) -> bool:
    """Whether fix_weight changes this tensor (it then needs the whole tensor at once)."""
    return (arch in _PERMUTED_QK and hf_name.endswith(("q_proj.weight", "k_proj.weight"))) or \
        (arch in _PLUS_ONE_NORMS and hf_name.endswith("norm.weight"))


def fix_weight(arch: str, hf_name: str, w: np.ndarray, config: dict) -> np.ndarray:
    """Undo llama.cpp's conversion changes on one dequantized tensor (float32)."""
    if arch in _PERMUTED_QK and hf_name.endswith(("q_proj.weight", "k_proj.weight")):
        heads = config["num_attention_heads"] if "q_proj" in hf_name else config["num_key_value_heads"]
        return _unpermute(w, heads)
    if arch in _PLUS_ONE_NORMS and hf_name.endswith("norm.weight"):
        return w - 1.0
    return w


def _unpermute(w: np.ndarray, heads: int) -> np.ndarray:
    """Inverse of convert_hf_to_gguf.py's LlamaModel.permute (rows regrouped per head: halves, not pairs)."""
    dim = w.shape[0] // heads // 2
    return np.ascontiguousarray(w.reshape(heads, dim, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape))


def hf_config(metadata: dict, tensor_shapes: dict[str, list[int]]) -> dict:
    """A transformers config dict (for AutoConfig.for_model) from GGUF metadata and tensor shapes."""
    arch = str(metadata.get("general.architecture"))
    check_architecture(arch)
    model_type, class_name = ARCHITECTURES[arch]

    def get(key, default=None):
        return metadata.get(f"{arch}.{key}", default)

    def need(key):
        if get(key) is None:
            raise ValueError(f"GGUF metadata lacks {arch}.{key}")
        return get(key)

    heads = int(need("attention.head_count"))
    hidden = int(need("embedding_length"))
    kv_heads = get("attention.head_count_kv", heads)
    if isinstance(kv_heads, list):  # per-layer counts (not used by these architectures): they must agree
        if len(set(kv_heads)) != 1:
            raise ValueError(f"GGUF: per-layer KV head counts {sorted(set(kv_heads))} are not supported")
        kv_heads = kv_heads[0]
    vocab = get("vocab_size") or metadata.get("tokenizer.ggml.tokens.count")
    if not vocab:
        if "token_embd.weight" not in tensor_shapes:
            raise ValueError("GGUF has no token_embd.weight tensor (and no vocabulary size)")
        vocab = tensor_shapes["token_embd.weight"][0]
    config = {
        "model_type": model_type, "architectures": [class_name],
        "hidden_size": hidden, "num_hidden_layers": int(need("block_count")),
        "intermediate_size": int(need("feed_forward_length")),
        "num_attention_heads": heads, "num_key_value_heads": int(kv_heads),
        "head_dim": int(get("attention.key_length", hidden // heads)),
        "rms_norm_eps": float(get("attention.layer_norm_rms_epsilon", 1e-6)),
        "max_position_embeddings": int(get("context_length", 2048)),
        "rope_theta": float(get("rope.freq_base", 10000.0)),
        "vocab_size": int(vocab),
        "tie_word_embeddings": "output.weight" not in tensor_shapes,
    }
    for gguf_key, hf_key in (("bos_token_id", "bos_token_id"), ("eos_token_id", "eos_token_id"),
                             ("padding_token_id", "pad_token_id")):
        if f"tokenizer.ggml.{gguf_key}" in metadata:
            config[hf_key] = int(metadata[f"tokenizer.ggml.{gguf_key}"])
    scaling = _rope_scaling(get)
    if scaling:
        config["rope_scaling"] = scaling
    if arch == "qwen2":
        config["attention_bias"] = True
    if arch == "gemma3":
        config.update(_gemma3(get, config))
    elif get("attention.sliding_window"):
        config.update(sliding_window=int(get("attention.sliding_window")), use_sliding_window=True)
    return config


def _gemma3(get, config: dict) -> dict:
    """Gemma 3's extra hyper-parameters, as llama.cpp's gemma3 model derives them."""
    n = config["num_hidden_layers"]
    pattern = get("attention.sliding_window_pattern", 6)
    if isinstance(pattern, list):  # per-layer flags: True = sliding
        layer_types = ["sliding_attention" if p else "full_attention" for p in pattern]
    else:
        layer_types = ["full_attention" if (i + 1) % int(pattern) == 0 else "sliding_attention" for i in range(n)]
    # llama.cpp: the 27B model (62 layers) scales queries by hidden/heads, every other size by head_dim
    scalar = config["hidden_size"] // config["num_attention_heads"] if n == 62 else config["head_dim"]
    out = {"layer_types": layer_types, "sliding_window": int(get("attention.sliding_window", 4096)),
           "rope_local_base_freq": 10000.0, "query_pre_attn_scalar": scalar,
           "hidden_activation": "gelu_pytorch_tanh"}
    if get("final_logit_softcapping"):
        out["final_logit_softcapping"] = float(get("final_logit_softcapping"))
    if get("attn_logit_softcapping"):
        out["attn_logit_softcapping"] = float(get("attn_logit_softcapping"))
    return out


def _rope_scaling(get) -> dict | None:
    kind = get("rope.scaling.type")
    factor = get("rope.scaling.factor")
    if not kind or kind == "none" or not factor or float(factor) == 1.0:
        return None
    scaling = {"rope_type": str(kind), "factor": float(factor)}
    original = get("rope.scaling.original_context_length")
    if original:
        scaling["original_max_position_embeddings"] = int(original)
    return scaling
