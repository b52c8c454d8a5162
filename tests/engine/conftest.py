"""Fixtures for engine tests: tiny model folders (shared llama/qwen2 plus a few built here)."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from pyimpl.models import tiny_model_path


def _build(path: Path, config) -> Path:
    """Save a randomly initialised model for `config` (fixed seed, norms and biases randomised too)."""
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.ndim == 1:
                p.normal_(1.0 if "norm" in name else 0.0, 0.1 if "norm" in name else 0.2)
            else:
                p.normal_(0.0, 0.2)
    model.save_pretrained(path)
    return path


_SHAPE = dict(vocab_size=512, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
              num_key_value_heads=2, max_position_embeddings=256, bos_token_id=0, eos_token_id=1)


@pytest.fixture(scope="session")
def llama_dir() -> Path:
    return tiny_model_path("llama")


@pytest.fixture(scope="session")
def qwen2_dir() -> Path:
    return tiny_model_path("qwen2")


@pytest.fixture(scope="session")
def long_llama_dir(tmp_path_factory) -> Path:
    """A tiny Llama with a 4,096-token context (the shared tiny models stop at 2,048)."""
    from transformers import LlamaConfig

    shape = {**_SHAPE, "max_position_embeddings": 4096}
    return _build(tmp_path_factory.mktemp("long") / "llama", LlamaConfig(**shape))


@pytest.fixture(scope="session")
def extra_model_dirs(tmp_path_factory) -> dict[str, Path]:
    """Architectures and rope variants that make_tiny does not cover; the engine needs no tokenizer."""
    from transformers import GPT2Config, LlamaConfig, MistralConfig, Qwen3Config

    root = tmp_path_factory.mktemp("engine-models")
    return {
        "qwen3": _build(root / "qwen3", Qwen3Config(**_SHAPE, head_dim=16, tie_word_embeddings=True)),
        "mistral": _build(root / "mistral", MistralConfig(**_SHAPE, sliding_window=None)),
        "mistral-window": _build(root / "mistral-window", MistralConfig(**_SHAPE, sliding_window=12)),
        "llama3-rope": _build(root / "llama3-rope", LlamaConfig(**_SHAPE, rope_parameters={
            "rope_type": "llama3", "rope_theta": 10000.0, "factor": 8.0, "low_freq_factor": 1.0,
            "high_freq_factor": 4.0, "original_max_position_embeddings": 64})),
        "linear-rope": _build(root / "linear-rope", LlamaConfig(**_SHAPE, rope_parameters={
            "rope_type": "linear", "rope_theta": 10000.0, "factor": 2.0})),
        "gpt2-fallback": _build(root / "gpt2", GPT2Config(vocab_size=512, n_embd=64, n_layer=2, n_head=4,
                                                          n_positions=256, bos_token_id=0, eos_token_id=1)),
    }


