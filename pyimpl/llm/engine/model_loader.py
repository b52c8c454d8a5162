"""Reads a HF model folder's config and generation config: architecture, eos ids, context length, dtype."""
from __future__ import annotations

import json
import os
from dataclasses import dataclass

import torch

from .llama import SUPPORTED_ARCHITECTURES


@dataclass
class ModelInfo:
    config: object  # transformers PretrainedConfig
    architecture: str
    eos_token_ids: list[int]
    max_model_len: int
    vocab_size: int

    @property
    def has_own_implementation(self) -> bool:
        return self.architecture in SUPPORTED_ARCHITECTURES


def read_model_info(model_dir: str) -> ModelInfo:
    """Config facts the engine needs; eos ids merge config.json and generation_config.json."""
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(model_dir)
    arch = (getattr(config, "architectures", None) or ["?"])[0]
    eos: list[int] = []
    sources = [getattr(config, "eos_token_id", None)]
    gen_path = os.path.join(model_dir, "generation_config.json")
    if os.path.exists(gen_path):
        with open(gen_path) as f:
            sources.append(json.load(f).get("eos_token_id"))
    for value in sources:
        for t in (value if isinstance(value, list) else [value]):
            if isinstance(t, int) and t not in eos:
                eos.append(t)
    max_len = getattr(config, "max_position_embeddings", None) or getattr(config, "n_positions", None) or 2048
    return ModelInfo(config, arch, eos, int(max_len), int(config.vocab_size))


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
