"""Incremental detokenization: multi-byte characters split across tokens stream intact; specials skipped."""
from __future__ import annotations

import pytest

MULTIBYTE = ["héllo naïve café", "日本語のテキスト 世界", "emoji 🎉🚀 and 👩‍👩‍👧 family", "mixed: Ωmega — “quotes” ✓"]


@pytest.fixture(params=["rust", "python"])
def pre(request, pre):
    """The preprocessor, its detokenizer() being tokenizers' DecodeStream (what a Rust-backed tokenizer gets) or
    the Python window (tokenizers without a Rust backend): both keep the same contract."""
    if request.param == "python":
        from pyimpl.llm.text.detokenizer import IncrementalDetokenizer

        class PythonDetokenizing:
            def __init__(self, inner):
                self._inner = inner

            def __getattr__(self, name):
                return getattr(self._inner, name)

            def detokenizer(self, skip_special_tokens=True, prompt_token_ids=()):
                return IncrementalDetokenizer(self._inner.tokenizer, skip_special_tokens, prompt_token_ids)
        return PythonDetokenizing(pre)
    return pre


def test_rust_backed_tokenizers_get_decode_stream(pre):
    from pyimpl.llm.text.detokenizer import IncrementalDetokenizer, StreamingDetokenizer
    assert isinstance(pre.detokenizer(), (StreamingDetokenizer, IncrementalDetokenizer))
    if not hasattr(pre, "_inner"):
        assert isinstance(pre.detokenizer(), StreamingDetokenizer)


def test_a_batch_ending_mid_character_emits_what_its_earlier_tokens_complete(pre):
    ids = pre.tokenize("日本語のテキスト")
    cut = next(n for n in range(1, len(ids)) if pre.decode(ids[:n]).endswith("\ufffd"))
    det = pre.detokenizer()
    first = det.add(ids[:cut])
    assert first == pre.decode(ids[:cut]).rstrip("\ufffd") and "\ufffd" not in first
    assert first + det.add(ids[cut:]) + det.flush() == "日本語のテキスト"


def stream(det, ids: list[int], step: int = 1) -> list[str]:
    pieces = [det.add(ids[i:i + step]) for i in range(0, len(ids), step)]
    return pieces + [det.flush()]


@pytest.mark.parametrize("text", MULTIBYTE)
@pytest.mark.parametrize("step", [1, 3])
def test_multibyte_text_streams_intact(pre, text, step):
    ids = pre.tokenize(text)
    assert any("\ufffd" in pre.decode([i]) for i in ids)   # some character is split across tokens
    pieces = stream(pre.detokenizer(), ids, step)
    assert all("\ufffd" not in p for p in pieces)
    assert "".join(pieces) == text == pre.decode(ids)


def test_character_split_over_tokens_is_held_back(pre):
    ids = pre.tokenize("🎉")
    det = pre.detokenizer()
    assert len(ids) > 1
    assert [det.add([i]) for i in ids] == [""] * (len(ids) - 1) + ["🎉"]


def test_special_tokens_skipped_by_default(pre):
    im_start, im_end = pre.tokenizer.convert_tokens_to_ids(["<|im_start|>", "<|im_end|>"])
    ids = [im_start] + pre.tokenize("Hello world") + [im_end]
    assert "".join(stream(pre.detokenizer(), ids)) == "Hello world"
    assert "".join(stream(pre.detokenizer(skip_special_tokens=False), ids)) == "<|im_start|>Hello world<|im_end|>"


def test_long_stream_matches_full_decode(pre):
    text = " ".join(MULTIBYTE) * 20
    ids = pre.tokenize(text)
    assert "".join(stream(pre.detokenizer(), ids)) == pre.decode(ids)


def test_incomplete_tail_is_flushed_at_the_end(pre):
    ids = pre.tokenize("日本語のテキスト")
    cut = next(n for n in range(1, len(ids)) if pre.decode(ids[:n]).endswith("\ufffd"))
    det = pre.detokenizer()
    streamed = "".join(det.add([i]) for i in ids[:cut])
    assert "\ufffd" not in streamed
    assert streamed + det.flush() == pre.decode(ids[:cut])


class CountingBackend:
    """Wraps a Rust tokenizer and records how many ids each decode call sees."""

    def __init__(self, backend):
        self.backend, self.sizes = backend, []

    def decode(self, ids, skip_special_tokens=True):
        self.sizes.append(len(ids))
        return self.backend.decode(ids, skip_special_tokens=skip_special_tokens)


def test_each_token_decodes_a_bounded_window(pre):
    from types import SimpleNamespace

    from pyimpl.llm.text.detokenizer import IncrementalDetokenizer

    counting = CountingBackend(pre.tokenizer.backend_tokenizer)
    ids = pre.tokenize(" ".join(MULTIBYTE) * 50)
    det = IncrementalDetokenizer(SimpleNamespace(backend_tokenizer=counting))
    assert "".join(det.add([i]) for i in ids) + det.flush() == pre.decode(ids)
    assert len(ids) > 1000 and max(counting.sizes) <= 8


def test_prompt_context_does_not_change_the_text(pre):
    prompt = pre.tokenize("The quick brown fox")
    ids = pre.tokenize(" jumps 🎉 café")
    det = pre.detokenizer(prompt_token_ids=prompt)
    assert "".join(det.add([i]) for i in ids) + det.flush() == " jumps 🎉 café"
