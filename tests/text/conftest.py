"""Fixtures for the text-processing tests: a small model folder with a byte-level BPE tokenizer."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from pyimpl.llm.preprocessor import Preprocessor

CHATML_WITH_TOOLS = (
    "{% if tools %}<|im_start|>system\nYou may call these tools:\n"
    "{% for tool in tools %}{{ tool | tojson }}\n{% endfor %}<|im_end|>\n{% endif %}"
    "{% for m in messages %}"
    "{% if m.role == 'assistant' and m.tool_calls %}<|im_start|>assistant\n{{ m.content }}"
    "{% for c in m.tool_calls %}<tool_call>\n{\"name\": \"{{ c.function.name }}\", \"arguments\": "
    "{{ c.function.arguments | tojson }}}\n</tool_call>{% endfor %}<|im_end|>\n"
    "{% elif m.role == 'tool' %}<|im_start|>user\n<tool_response>\n{{ m.content }}\n</tool_response><|im_end|>\n"
    "{% else %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endif %}"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
CORPUS = [
    "The quick brown fox jumps over the lazy dog.",
    "Hello world, this is a tiny tokenizer for tests.",
    "Tool calls and reasoning are parsed from streamed text.",
    "Stop strings may be split across token boundaries.",
] * 20


def _build_model_dir(path: Path) -> Path:
    from tokenizers import ByteLevelBPETokenizer
    from transformers import PreTrainedTokenizerFast

    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(CORPUS, vocab_size=400, min_frequency=1, special_tokens=SPECIAL_TOKENS)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe._tokenizer, eos_token="<|im_end|>",
                                        pad_token="<|endoftext|>", chat_template=CHATML_WITH_TOOLS)
    tokenizer.save_pretrained(str(path))
    endoftext = tokenizer.convert_tokens_to_ids("<|endoftext|>")
    (path / "config.json").write_text(json.dumps({"eos_token_id": endoftext}))
    (path / "generation_config.json").write_text(json.dumps({"eos_token_id": [tokenizer.eos_token_id]}))
    return path


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model folder holding only tokenizer files, a ChatML template with tools, and EOS config."""
    return _build_model_dir(tmp_path_factory.mktemp("text_model"))


@pytest.fixture(scope="session")
def pre(model_dir: Path) -> Preprocessor:
    return Preprocessor.from_model_dir(model_dir)
