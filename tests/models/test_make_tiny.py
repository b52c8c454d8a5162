"""Generated model folders load offline with transformers, deterministically, in both archs."""
import json
import os
import subprocess
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM, AutoTokenizer

from pyimpl.models import make_tiny_model, tiny_model_path
from pyimpl.models import make_tiny
from pyimpl.models.make_tiny import PRESETS, build_config

EXPECTED_ARCH = {"llama": "LlamaForCausalLM", "qwen2": "Qwen2ForCausalLM"}


@pytest.mark.parametrize("arch", ["llama", "qwen2"])
def test_tiny_folder_loads_and_generates(arch):
    path = tiny_model_path(arch)
    names = {p.name for p in path.iterdir()}
    assert {"config.json", "generation_config.json", "model.safetensors", "tokenizer.json",
            "tokenizer_config.json", "special_tokens_map.json"} <= names
    config = json.loads((path / "config.json").read_text())
    assert config["architectures"] == [EXPECTED_ARCH[arch]]
    assert config["max_position_embeddings"] == 2048
    assert (config["num_hidden_layers"], config["hidden_size"]) == (2, 64)
    assert (config["num_attention_heads"], config["num_key_value_heads"]) == (4, 2)

    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path)
    assert type(model).__name__ == EXPECTED_ARCH[arch]
    assert model.dtype == torch.float32
    assert config["vocab_size"] == len(tok)
    assert config["eos_token_id"] == tok.eos_token_id == tok.convert_tokens_to_ids("<|im_end|>")
    assert config["bos_token_id"] == tok.convert_tokens_to_ids("<|endoftext|>")
    gen = json.loads((path / "generation_config.json").read_text())
    assert gen["eos_token_id"] == [tok.convert_tokens_to_ids("<|im_end|>"), tok.convert_tokens_to_ids("<|endoftext|>")]

    ids = tok.apply_chat_template([{"role": "user", "content": "Hi"}], add_generation_prompt=True,
                                  return_tensors="pt", return_dict=True)
    out = model.generate(**ids, do_sample=False, max_new_tokens=8, eos_token_id=None, pad_token_id=0)
    new = out[0, ids["input_ids"].shape[1]:].tolist()
    assert len(new) == 8 and len(set(new)) > 1  # random weights, but not a constant loop


def test_qwen2_has_random_qkv_bias_and_llama_has_none():
    qwen = load_file(tiny_model_path("qwen2") / "model.safetensors")
    llama = load_file(tiny_model_path("llama") / "model.safetensors")
    for proj in ("q_proj", "k_proj", "v_proj"):
        bias = qwen[f"model.layers.0.self_attn.{proj}.bias"]
        assert bias.abs().sum() > 0
        assert f"model.layers.0.self_attn.{proj}.bias" not in llama
    assert not torch.allclose(llama["model.norm.weight"], torch.ones_like(llama["model.norm.weight"]))
    assert "lm_head.weight" in llama and "lm_head.weight" not in qwen  # untied vs tied embeddings


def test_same_seed_same_weights_other_seed_differs(tmp_path):
    cached = load_file(tiny_model_path("llama") / "model.safetensors")
    again = load_file(make_tiny_model(tmp_path / "a", arch="llama", seed=0) / "model.safetensors")
    other = load_file(make_tiny_model(tmp_path / "b", arch="llama", seed=1) / "model.safetensors")
    assert cached.keys() == again.keys()
    assert all(torch.equal(cached[k], again[k]) for k in cached)
    assert not torch.equal(cached["model.embed_tokens.weight"], other["model.embed_tokens.weight"])


@pytest.mark.parametrize("arch", ["llama", "qwen2"])
def test_smollm_preset_has_smollm_shape(arch):
    config = build_config(arch, PRESETS["smollm-135m"], vocab_size=2000, bos_id=0, eos_id=2, pad_id=0)
    assert (config.num_hidden_layers, config.hidden_size, config.intermediate_size) == (30, 576, 1536)
    assert (config.num_attention_heads, config.num_key_value_heads) == (9, 3)
    assert config.tie_word_embeddings and config.vocab_size == 2000


def test_cli_writes_qwen2_folder(tmp_path):
    out = tmp_path / "m"
    assert make_tiny.main([str(out), "--arch", "qwen2", "--seed", "3"]) == 0
    assert json.loads((out / "config.json").read_text())["architectures"] == ["Qwen2ForCausalLM"]
    assert AutoModelForCausalLM.from_pretrained(out).config.vocab_size == 2000


def test_unknown_arch_or_preset_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="arch"):
        make_tiny_model(tmp_path / "x", arch="gpt2")
    with pytest.raises(ValueError, match="preset"):
        make_tiny_model(tmp_path / "y", preset="huge")


def test_concurrent_builders_share_one_complete_folder(tmp_path):
    code = "from pyimpl.models import tiny_model_path; print(tiny_model_path('llama', seed=5))"
    env = dict(os.environ, PYIMPL_MODEL_CACHE=str(tmp_path), OMP_NUM_THREADS="1")
    procs = [subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, text=True)
             for _ in range(2)]
    paths = {p.communicate()[0].strip() for p in procs}
    assert all(p.returncode == 0 for p in procs) and len(paths) == 1
    built = [p for p in tmp_path.iterdir()]
    assert [str(p) for p in built] == list(paths)  # no temporary folders left behind
    assert AutoTokenizer.from_pretrained(built[0]) and (built[0] / "model.safetensors").exists()
