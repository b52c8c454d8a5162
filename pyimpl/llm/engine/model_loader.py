"""Reads a model's config (HF folder, .gguf file or a folder holding one) and builds the engine's model for it."""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import torch

from .gemma3 import Gemma3Model
from .gguf_cache import GgufModel, prepare
from .gguf_names import fix_weight, hf_tensor_name, needs_fix
from .gguf_reader import dequantize_tensor, find_gguf, map_file, row_chunks
from .llama import SUPPORTED_ARCHITECTURES, LlamaModel, load_safetensors
from .model_api import CausalLM

MODEL_CLASSES = {**{a: LlamaModel for a in SUPPORTED_ARCHITECTURES}, "Gemma3ForCausalLM": Gemma3Model}


@dataclass
class ModelInfo:
    config: object  # transformers PretrainedConfig
    architecture: str
    eos_token_ids: list[int]
    max_model_len: int
    vocab_size: int
    gguf: GgufModel | None = None  # set when the weights come from a GGUF file

    @property
    def has_own_implementation(self) -> bool:
        return self.architecture in MODEL_CLASSES


def read_model_info(path: str) -> ModelInfo:
    """Config facts the engine needs: the transformers config (to build the model) and the folder's facts
    (EOS ids, context length, vocabulary) read by pyimpl.llm.model_facts, the rule the card and preprocessor share.

    A .gguf file (or a folder holding one) is converted once into a cached HF-style folder (gguf_cache)."""
    from transformers import AutoConfig

    from pyimpl.llm.model_facts import read_model_facts

    gguf_path = find_gguf(path)
    gguf = prepare(gguf_path) if gguf_path else None
    facts = read_model_facts(gguf.folder if gguf else path)
    config = AutoConfig.from_pretrained(facts.folder)
    arch = facts.architecture or (getattr(config, "architectures", None) or ["?"])[0]
    vocab = facts.vocab_size or int(config.vocab_size)
    return ModelInfo(config, arch, list(facts.eos_token_ids), facts.context_length, vocab, gguf)


def build_model(info: ModelInfo, path: str, device: torch.device, dtype: torch.dtype,
                max_positions: int) -> CausalLM:
    """The engine's own model for `info.architecture`, weights from the GGUF file or the folder's safetensors."""
    cls = MODEL_CLASSES.get(info.architecture)
    if cls is None:
        raise ValueError(f"architecture {info.architecture} has no own implementation "
                         f"(supported: {', '.join(MODEL_CLASSES)})")
    weights = load_gguf_weights(info.gguf, info.config, dtype) if info.gguf else load_safetensors(path)
    return cls(info.config, weights, device, dtype, max_positions)


def load_gguf_weights(gguf: GgufModel, config, dtype: torch.dtype) -> dict[str, torch.Tensor]:
    """Every tensor of the GGUF file, dequantized, renamed to HF names, llama.cpp's changes undone, in `dtype`.

    Row chunks of large tensors dequantize on a thread pool (numpy and torch release the GIL) straight into the
    `dtype` tensors, so no full float32 copy of the model is ever held."""
    header = gguf.header()
    arch = header.architecture
    heads = {"num_attention_heads": config.num_attention_heads, "num_key_value_heads": config.num_key_value_heads}
    mapped = map_file(gguf.gguf_path)
    if mapped.size < max((t.offset + t.n_bytes for t in header.tensors), default=0):
        raise ValueError(f"{gguf.gguf_path} is shorter than its tensor index says (truncated or replaced file?)")
    weights: dict[str, torch.Tensor] = {}
    jobs = []
    for entry in header.tensors:
        name = hf_tensor_name(arch, entry.name)
        if name is None:
            continue
        if needs_fix(arch, name):  # small tensors (q/k projections, norms): whole, then fixed
            weights[name] = torch.from_numpy(fix_weight(arch, name, dequantize_tensor(mapped, entry), heads)).to(dtype)
            continue
        out = weights[name] = torch.empty(entry.shape, dtype=dtype)
        jobs.extend((out, row, piece) for row, piece in row_chunks(entry))

    def run(job) -> None:
        out, row, piece = job
        out[row:row + piece.shape[0]].copy_(torch.from_numpy(dequantize_tensor(mapped, piece)))

    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        list(pool.map(run, jobs))
    return weights


def resolve_dtype(dtype, config, device: torch.device) -> torch.dtype:
    """None: bfloat16 on CPUs with native bf16 matmuls (AVX512-BF16 / AMX), else float32; the config's dtype on
    GPUs; strings like "bfloat16" are accepted."""
    if isinstance(dtype, torch.dtype):
        return dtype
    if isinstance(dtype, str) and dtype != "auto":
        return getattr(torch, dtype)
    if device.type == "cpu":
        return torch.bfloat16 if cpu_has_native_bf16() else torch.float32
    cfg = getattr(config, "dtype", None) or getattr(config, "torch_dtype", None)
    if isinstance(cfg, str):
        cfg = getattr(torch, cfg)
    return cfg if isinstance(cfg, torch.dtype) else torch.float16


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bf16 matmuls natively (x86 avx512_bf16 or amx_bf16 flags; Linux only)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return bool(flags & {"avx512_bf16", "amx_bf16"})
    except OSError:
        pass
    return False
