"""Write a complete Hugging Face model folder with deterministic random weights.

``python -m pyimpl.models.make_tiny DIR [--arch llama|qwen2] [--preset tiny|smollm-135m] [--seed N]``
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from .tokenizer import ENDOFTEXT, IM_END, write_tokenizer_files

ARCHS = ("llama", "qwen2")


@dataclass(frozen=True)
class Preset:
    """Model shape; the vocabulary size always comes from the tokenizer."""
    num_hidden_layers: int
    hidden_size: int
    num_attention_heads: int
    num_key_value_heads: int
    intermediate_size: int
    max_position_embeddings: int
    tie_word_embeddings: bool | None = None  # None: llama untied, qwen2 tied (both paths get exercised)
    initializer_range: float = 0.2  # wider than HF's 0.02: clear greedy margins and varied (non-looping) output


PRESETS: dict[str, Preset] = {
    "tiny": Preset(2, 64, 4, 2, 128, 2048),
    "smollm-135m": Preset(30, 576, 9, 3, 1536, 2048, tie_word_embeddings=True, initializer_range=0.02),
}


def build_config(arch: str, preset: Preset, vocab_size: int, bos_id: int, eos_id: int, pad_id: int):
    """The transformers config object for this arch and preset."""
    from transformers import LlamaConfig, Qwen2Config

    tied = preset.tie_word_embeddings if preset.tie_word_embeddings is not None else arch == "qwen2"
    shape = {k: v for k, v in asdict(preset).items() if k != "tie_word_embeddings"}
    common = dict(shape, vocab_size=vocab_size, tie_word_embeddings=tied, bos_token_id=bos_id,
                  eos_token_id=eos_id, pad_token_id=pad_id, hidden_act="silu", rope_theta=10000.0)
    if arch == "llama":
        return LlamaConfig(**common, rms_norm_eps=1e-5, attention_bias=False, mlp_bias=False)
    if arch == "qwen2":
        return Qwen2Config(**common, rms_norm_eps=1e-6, use_sliding_window=False)
    raise ValueError(f"arch must be one of {ARCHS}, got {arch!r}")


def make_tiny_model(out_dir: str | Path, arch: str = "llama", preset: str = "tiny", seed: int = 0) -> Path:
    """Write config, generation config, fp32 safetensors and tokenizer files to out_dir; return it."""
    import torch
    from transformers import AutoModelForCausalLM, GenerationConfig

    if preset not in PRESETS:
        raise ValueError(f"preset must be one of {tuple(PRESETS)}, got {preset!r}")
    shape = PRESETS[preset]
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tok = write_tokenizer_files(out, model_max_length=shape.max_position_embeddings)
    bos_id, eos_id = tok.token_to_id(ENDOFTEXT), tok.token_to_id(IM_END)
    config = build_config(arch, shape, tok.get_vocab_size(), bos_id, eos_id, pad_id=bos_id)
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    _randomize_vectors(model, shape.initializer_range)
    model.generation_config = GenerationConfig(
        bos_token_id=bos_id, eos_token_id=[eos_id, bos_id], pad_token_id=bos_id,
        do_sample=False, max_new_tokens=256)
    model.save_pretrained(out)
    # Legacy keys too, for readers written against transformers 4.x configs.
    _patch_json(out / "config.json", architectures=[type(model).__name__], torch_dtype="float32",
                rope_theta=config.rope_parameters["rope_theta"])
    return out


def _randomize_vectors(model, std: float) -> None:
    """Give norm weights and biases (HF inits them to 1 and 0) random values so a loader that skips them is caught."""
    import torch

    with torch.no_grad():
        for name, param in model.named_parameters():
            if param.ndim == 1:
                param.normal_(1.0 if "norm" in name else 0.0, 0.1 if "norm" in name else std)


def _patch_json(path: Path, **fields: object) -> None:
    data = json.loads(path.read_text())
    data.update(fields)
    path.write_text(json.dumps(data, indent=2) + "\n")


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    ap = argparse.ArgumentParser(prog="python -m pyimpl.models.make_tiny", description=__doc__.splitlines()[0])
    ap.add_argument("dir", type=Path)
    ap.add_argument("--arch", choices=ARCHS, default="llama")
    ap.add_argument("--preset", choices=tuple(PRESETS), default="tiny")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    out = make_tiny_model(args.dir, arch=args.arch, preset=args.preset, seed=args.seed)
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
