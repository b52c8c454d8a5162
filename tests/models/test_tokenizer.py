"""The shipped byte-level BPE tokenizer round-trips text and renders the ChatML template."""
import json
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest
from transformers import AutoTokenizer

from pyimpl.models import tiny_model_path
from pyimpl.models.tokenizer import TOKENIZER_JSON, train_tokenizer

TEXTS = [
    "Hello, world! The quick brown fox jumps over the lazy dog. 2+2=4",
    "Crème brûlée, façade, naïve, Zürich, São Paulo, Łódź",
    "你好，世界！こんにちは。안녕하세요",
    "Emoji: 🤖🚀👍 and a family 👨‍👩‍👧‍👦 and a flag 🇫🇷",
    "  leading spaces, tabs\tand\nnew lines\n\n",
    "ꙮ unseen 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 characters ∮",
]


@pytest.fixture(scope="module", params=["llama", "qwen2"])
def tok(request):
    # transformers picks a different tokenizer class per model_type; both must read the same files the same way
    return AutoTokenizer.from_pretrained(tiny_model_path(request.param))


def test_special_and_markup_tokens(tok):
    ids = {t: tok.convert_tokens_to_ids(t) for t in
           ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<tool_call>", "</tool_call>", "<think>", "</think>"]}
    assert ids["<|endoftext|>"] == 0 and ids["<|im_start|>"] == 1 and ids["<|im_end|>"] == 2
    assert len(set(ids.values())) == 7 and max(ids.values()) < len(tok) == 2000
    text = "<think>hm</think><tool_call>{}</tool_call><|im_end|>"
    encoded = tok.encode(text, add_special_tokens=False)
    for marker in ["<think>", "</think>", "<tool_call>", "</tool_call>", "<|im_end|>"]:
        assert ids[marker] in encoded
    # markup tokens survive skip_special_tokens (tool/reasoning parsers need them); ChatML ones do not
    assert tok.decode(encoded, skip_special_tokens=True) == "<think>hm</think><tool_call>{}</tool_call>"


@pytest.mark.parametrize("text", TEXTS)
def test_round_trip(tok, text):
    ids = tok.encode(text, add_special_tokens=False)
    assert tok.decode(ids) == text
    assert all(0 <= i < len(tok) for i in ids)


def test_common_words_are_single_tokens(tok):
    assert len(tok.encode(" the", add_special_tokens=False)) == 1
    assert len(tok.encode("Hello world", add_special_tokens=False)) <= 3


def test_no_bos_added(tok):
    assert tok.encode("Hi") == tok.encode("Hi", add_special_tokens=False)


def test_shipped_tokenizer_is_reproducible_from_corpus():
    assert json.loads(train_tokenizer().to_str()) == json.loads(TOKENIZER_JSON.read_text())
