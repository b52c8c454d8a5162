"""GGUF loading: dequantization per type, llama.cpp conventions undone, config/tokenizer cache, paths accepted."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from gguf import GGMLQuantizationType as Q
from test_gguf_files import write_gguf

from pyimpl.llm.engine import Engine, SamplingParams
from pyimpl.llm.engine import gguf_cache, gguf_reader
from pyimpl.llm.engine.gguf_reader import TensorEntry, dequantize_tensor, row_chunks

GREEDY = SamplingParams(max_tokens=16, temperature=0.0)  # both sides stop at eos (id 1)


@pytest.fixture(autouse=True)
def cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv(gguf_cache.CACHE_ENV, str(tmp_path / "cache"))
    return tmp_path / "cache"


def _dequant(raw: bytes, qtype: Q, shape: list[int]) -> np.ndarray:
    return dequantize_tensor(np.frombuffer(raw, dtype=np.uint8), TensorEntry("t", int(qtype), shape, 0, len(raw)))


def _f16(x: float) -> bytes:
    return np.float16(x).tobytes()


def test_plain_types_dequantize_to_their_values():
    values = np.array([[0.5, -1.25, 3.0, 1e-3]], dtype=np.float32)
    assert np.array_equal(_dequant(values.tobytes(), Q.F32, [1, 4]), values)
    assert np.allclose(_dequant(values.astype(np.float16).tobytes(), Q.F16, [1, 4]), values, atol=1e-3)
    top = values.view(np.uint32) >> 16
    truncated = (top << 16).view(np.float32)  # bf16 keeps the high half of the float32 bits
    assert np.array_equal(_dequant(top.astype(np.uint16).tobytes(), Q.BF16, [1, 4]), truncated)


def test_block_types_dequantize_to_known_values():
    q8 = _f16(0.5) + bytes(np.arange(-16, 16, dtype=np.int8).tobytes())
    assert np.array_equal(_dequant(q8, Q.Q8_0, [1, 32])[0], 0.5 * np.arange(-16, 16))
    q4 = _f16(2.0) + bytes([0x8F] * 16)  # low nibble 15 -> values 0..15, high nibble 8 -> values 16..31
    assert np.array_equal(_dequant(q4, Q.Q4_0, [1, 32])[0], [2.0 * 7] * 16 + [0.0] * 16)
    q5 = _f16(1.0) + (0xFFFF0000).to_bytes(4, "little") + bytes([0x21] * 16)  # qh: high bit on values 16..31
    assert np.array_equal(_dequant(q5, Q.Q5_0, [1, 32])[0], [1 - 16] * 16 + [2 + 16 - 16] * 16)


def test_k_quants_dequantize_to_known_values():
    # Q4_K: 8 sub-blocks of 32, scale 2 and min 1 each (6-bit packed), d=1, dmin=0.5: value = 2*q - 0.5
    scales = bytes([2] * 4 + [1] * 4 + [0x12] * 4)
    qs = bytes((i % 16) | (((i + 3) % 16) << 4) for i in range(32)) * 4
    out = _dequant(_f16(1.0) + _f16(0.5) + scales + qs, Q.Q4_K, [1, 256])[0]
    lo = np.array([i % 16 for i in range(32)]) * 2 - 0.5
    hi = np.array([(i + 3) % 16 for i in range(32)]) * 2 - 0.5
    assert np.array_equal(out, np.concatenate([lo, hi] * 4))
    # Q5_K: the same scales, every qh bit set (+16): low nibble 1 -> 17, high nibble 2 -> 18
    out = _dequant(_f16(1.0) + _f16(0.5) + scales + bytes([0xFF] * 32) + bytes([0x21] * 128), Q.Q5_K, [1, 256])[0]
    assert np.array_equal(out, np.concatenate([[2 * 17 - 0.5] * 32, [2 * 18 - 0.5] * 32] * 4))
    # Q6_K: q = 1 everywhere (value q - 32), 16 groups of 16 with int8 scales 1..16, d=0.5
    raw = bytes([0x11] * 128) + bytes(64) + bytes(range(1, 17)) + _f16(0.5)
    out = _dequant(raw, Q.Q6_K, [1, 256])[0]
    assert np.array_equal(out, np.repeat(-31 * 0.5 * np.arange(1, 17), 16))


def test_row_chunks_dequantize_like_the_whole_tensor():
    from gguf.quants import quantize

    raw = quantize(np.random.default_rng(0).standard_normal((10, 64)).astype(np.float32), Q.Q4_0).tobytes()
    mapped = np.frombuffer(b"pad" + raw, dtype=np.uint8)
    entry = TensorEntry("t", int(Q.Q4_0), [10, 64], 3, len(raw))
    pieces = row_chunks(entry, max_elements=192)  # 3 rows per piece
    assert [(row, p.shape) for row, p in pieces] == [(0, [3, 64]), (3, [3, 64]), (6, [3, 64]), (9, [1, 64])]
    whole = dequantize_tensor(mapped, entry)
    assert np.array_equal(np.concatenate([dequantize_tensor(mapped, p) for _, p in pieces]), whole)


def _tiny(arch: str):
    from transformers import AutoModelForCausalLM, Gemma3TextConfig, LlamaConfig, Qwen2Config, Qwen3Config

    shape = dict(vocab_size=300, hidden_size=64, intermediate_size=128, num_attention_heads=2, num_key_value_heads=1,
                 head_dim=32, max_position_embeddings=256, bos_token_id=2, eos_token_id=1, pad_token_id=0)
    if arch == "gemma3":
        config = Gemma3TextConfig(**shape, num_hidden_layers=6, sliding_window=8, query_pre_attn_scalar=32,
                                  rope_theta=1e6, rope_local_base_freq=10000.0, rms_norm_eps=1e-6)
    elif arch == "qwen2":  # q/k/v biases
        config = Qwen2Config(**{k: v for k, v in shape.items() if k != "head_dim"}, num_hidden_layers=2,
                             rope_theta=10000.0, tie_word_embeddings=True)
    elif arch == "qwen3":  # q/k norms
        config = Qwen3Config(**shape, num_hidden_layers=2, rope_theta=10000.0, tie_word_embeddings=False)
    else:
        config = LlamaConfig(**shape, num_hidden_layers=2, rope_theta=10000.0, rms_norm_eps=1e-5,
                             tie_word_embeddings=False)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32).eval()
    with torch.no_grad():
        for _, p in model.named_parameters():
            p.normal_(0.0, 0.3 if p.ndim == 1 else 0.15)
    return model


GEMMA_TYPES = {"token_embd": Q.Q8_0, "attn_q": Q.Q4_0, "attn_k": Q.Q5_0, "attn_v": Q.Q8_0, "attn_output": Q.F16,
               "ffn_gate": Q.BF16, "ffn_up": Q.Q5_0, "ffn_down": Q.Q4_0}
LLAMA_TYPES = {"token_embd": Q.F16, "attn_q": Q.Q8_0, "attn_k": Q.Q4_0, "attn_v": Q.Q5_0, "output": Q.Q8_0}


@pytest.fixture(scope="module")
def tiny_files(tmp_path_factory):
    root = tmp_path_factory.mktemp("gguf")
    gemma, llama = _tiny("gemma3"), _tiny("llama")
    write_gguf(root / "gemma.gguf", "gemma3", gemma, GEMMA_TYPES,
               {"attention.sliding_window": 8, "rope.freq_base": 1e6})
    (root / "folder").mkdir()
    write_gguf(root / "folder" / "llama.gguf", "llama", llama, LLAMA_TYPES, {"rope.freq_base": 10000.0})
    files = {"gemma3": (root / "gemma.gguf", gemma), "llama": (root / "folder", llama)}
    for arch in ("qwen2", "qwen3"):
        model = _tiny(arch)
        write_gguf(root / f"{arch}.gguf", arch, model, LLAMA_TYPES, {"rope.freq_base": 10000.0})
        files[arch] = (root / f"{arch}.gguf", model)
    return files


def _hf_greedy(model, prompt: list[int], n: int) -> list[int]:
    with torch.inference_mode():
        out = model.generate(torch.tensor([prompt]), attention_mask=torch.ones(1, len(prompt), dtype=torch.long),
                             do_sample=False, max_new_tokens=n)
    return out[0, len(prompt):].tolist()


@pytest.mark.parametrize("arch", ["gemma3", "llama", "qwen2", "qwen3"])
def test_quantized_gguf_greedy_equals_transformers_on_the_dequantized_weights(tiny_files, arch):
    path, reference = tiny_files[arch]
    engine = Engine.from_pretrained(str(path), dtype="float32", num_kv_blocks=80, block_size=4)
    g = torch.Generator().manual_seed(3)
    prompts = [torch.randint(4, 300, (n,), generator=g).tolist() for n in (3, 13, 21)]
    outs = engine.generate_batch(prompts, GREEDY)
    assert [o.token_ids for o in outs] == [_hf_greedy(reference, p, 16) for p in prompts]


def test_second_load_reads_the_cache_not_the_header(tiny_files, cache_dir, monkeypatch):
    path, _ = tiny_files["gemma3"]
    first = gguf_cache.prepare(str(path))
    assert str(cache_dir) in first.folder

    def no_parse(_path):
        raise AssertionError("the GGUF header was parsed again")
    monkeypatch.setattr(gguf_cache, "read_header", no_parse)
    assert gguf_cache.prepare(str(path)).folder == first.folder
    engine = Engine.from_pretrained(str(path), dtype="float32", num_kv_blocks=80, block_size=4)
    assert engine.info.architecture == "Gemma3ForCausalLM"


def test_preprocessor_reads_a_gguf_path_and_gets_a_default_chat_template(tiny_files):
    from pyimpl.llm.text.preprocessor import Preprocessor

    path, _ = tiny_files["gemma3"]
    pre = Preprocessor.from_model_dir(path)
    assert pre.has_chat_template
    text = pre.render_chat([{"role": "user", "content": "a b"}])
    assert text == "<bos>User: a b\n\nAssistant:"
    assert pre.tokenize(text)[0] == 2  # <bos>
    assert 1 in pre.eos_token_ids


def test_bad_paths_and_architectures_are_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="GGUF file not found"):
        Engine.from_pretrained(str(tmp_path / "missing.gguf"))
    (tmp_path / "two").mkdir()
    for name in ("a.gguf", "b.gguf"):
        (tmp_path / "two" / name).write_bytes(b"GGUF")
    with pytest.raises(ValueError, match="several GGUF files"):
        Engine.from_pretrained(str(tmp_path / "two"))
    (tmp_path / "junk.gguf").write_bytes(b"not a gguf at all")
    with pytest.raises(ValueError, match="not a readable GGUF file"):
        Engine.from_pretrained(str(tmp_path / "junk.gguf"))
    with pytest.raises(ValueError, match="architecture 'rwkv6' is not supported"):
        Engine.from_pretrained(_bare_gguf(tmp_path / "rwkv.gguf", "rwkv6"))
    assert gguf_reader.find_gguf(tmp_path / "none") is None


def test_c_config_model_path_accepts_gguf_files_and_folders(tiny_files, tmp_path):
    from pyimpl.capi.config import check_model_path
    from pyimpl.capi.status import CapiError

    check_model_path(str(tiny_files["gemma3"][0]))
    check_model_path(str(tiny_files["llama"][0]))  # a folder holding one .gguf
    for missing in (tmp_path / "none", tmp_path / "none.gguf"):
        with pytest.raises(CapiError, match="GGUF file"):
            check_model_path(str(missing))


def _bare_gguf(path, arch: str, keys=(), tensors=None) -> str:
    """A GGUF with the given uint32 metadata keys (value 64) and float32 tensors, nothing else."""
    import gguf

    writer = gguf.GGUFWriter(str(path), arch)
    for key in keys:
        writer.add_uint32(f"{arch}.{key}", 64)
    for name, value in (tensors or {}).items():
        writer.add_tensor(name, value)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return str(path)


def test_a_gguf_missing_metadata_or_tensors_is_a_clear_error(tmp_path):
    keys = ("context_length", "embedding_length", "block_count", "feed_forward_length", "attention.head_count")
    with pytest.raises(ValueError, match="lacks llama.attention.head_count"):
        Engine.from_pretrained(_bare_gguf(tmp_path / "headless.gguf", "llama"))
    with pytest.raises(ValueError, match="no token_embd.weight"):
        Engine.from_pretrained(_bare_gguf(tmp_path / "bare.gguf", "llama", keys))
    embed = {"token_embd.weight": np.zeros((8, 64), dtype=np.float32)}
    with pytest.raises(ValueError, match="no tokenizer could be built from its metadata"):
        Engine.from_pretrained(_bare_gguf(tmp_path / "untokenized.gguf", "llama", keys, embed))
