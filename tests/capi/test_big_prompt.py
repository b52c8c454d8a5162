"""A large prompt never stalls the event loop that serves other streams (C ABI issue: one 8 MiB request
blocked every stream for ~25 s): its tokenization runs with the GIL released, and a prompt that cannot
fit the model's context is refused without being tokenized at all."""
import asyncio
import sys
import time

import pytest

from pyimpl.llm.text.preprocessor import Preprocessor, PromptTooLongError
from pyimpl.models import tiny_model_path

WORDS = "lorem ipsum dolor sit amet, consectetur adipiscing elit "


@pytest.fixture(scope="module")
def pre() -> Preprocessor:
    return Preprocessor.from_model_dir(tiny_model_path())


def test_large_text_tokenizes_off_the_loop_with_the_same_ids(pre, monkeypatch):
    monkeypatch.setattr(sys, "getswitchinterval", sys.getswitchinterval)  # restored after the test
    sys.setswitchinterval(0.0005)  # as the embedded library sets it
    text = WORDS * 10000  # 560 kB

    async def run() -> tuple[list[int], float]:
        worst = 0.0
        task = asyncio.ensure_future(asyncio.to_thread(pre.tokenize, text))
        last = time.perf_counter()
        while not task.done():
            await asyncio.sleep(0.005)
            now = time.perf_counter()
            worst, last = max(worst, now - last - 0.005), now
        return await task, worst

    try:
        ids, worst = asyncio.run(run())
    finally:
        sys.setswitchinterval(0.005)
    assert ids == pre.tokenizer.backend_tokenizer.encode(text, add_special_tokens=False).ids
    assert worst < 0.1, f"the loop stalled {worst * 1000:.0f} ms"


def test_a_prompt_far_over_the_limit_is_refused_without_tokenizing(pre):
    text = WORDS * 150000  # 8.4 MB
    start = time.perf_counter()
    with pytest.raises(PromptTooLongError) as info:
        pre.tokenize(text, limit=2048)
    assert time.perf_counter() - start < 0.5 and info.value.num_tokens is None
    with pytest.raises(PromptTooLongError) as info:  # near the limit: counted exactly, no id list built
        pre.tokenize(WORDS * 1500, limit=2048)
    assert info.value.num_tokens > 2048
