"""Helpers shared by the engine tests: prompts, transformers references, staggered submission."""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import torch

from pyimpl.llm.engine import Engine, SamplingParams

PROMPT_LENGTHS = (1, 3, 7, 16, 17, 31, 40, 64, 5, 23)


def make_prompts(lengths=PROMPT_LENGTHS, seed: int = 0, vocab: int = 400) -> list[list[int]]:
    """Deterministic pseudo-random prompts of the given lengths (ids above the special tokens)."""
    g = torch.Generator().manual_seed(seed)
    return [torch.randint(10, vocab, (n,), generator=g).tolist() for n in lengths]


@lru_cache(maxsize=None)
def _hf_model(path: str):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()


def hf_greedy(path: Path, prompt: list[int], max_new_tokens: int) -> list[int]:
    """transformers' generate(do_sample=False) continuation of one prompt (stops at the folder's eos ids)."""
    model = _hf_model(str(path))
    with torch.inference_mode():
        out = model.generate(torch.tensor([prompt]), attention_mask=torch.ones(1, len(prompt), dtype=torch.long),
                             do_sample=False, max_new_tokens=max_new_tokens)
    return out[0, len(prompt):].tolist()


def run_staggered(engine: Engine, prompts: list[list[int]], params: SamplingParams | list[SamplingParams],
                  arrive_every: int = 2, prefix: str = "r") -> dict[str, list[int]]:
    """Add one prompt every `arrive_every` steps while stepping; returns request id -> generated ids."""
    plist = params if isinstance(params, list) else [params] * len(prompts)
    done: dict[str, list[int]] = {}
    pending = list(enumerate(prompts))
    step = 0
    while pending or engine.has_unfinished_requests():
        if pending and step % arrive_every == 0:
            i, prompt = pending.pop(0)
            engine.add_request(f"{prefix}{i}", prompt, plist[i])
        for out in engine.step():
            if out.finished:
                done[out.request_id] = out.token_ids
        step += 1
    return done
