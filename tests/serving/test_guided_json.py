"""response_format json_object by constrained decoding: the JSON-prefix automaton, the processor, end to end."""
from __future__ import annotations

import json

import pytest
import torch

from pyimpl.llm.backend.guided_json import (MAX_CONSECUTIVE_WHITESPACE, JsonObjectLogitsProcessor, JsonPrefixState,
                                    is_json_object_prefix, token_texts)
from pyimpl.llm.frontend.model_manager import ModelManager
from pyimpl.llm.frontend.protocols import parse_chat_request, to_wire_request
from pyimpl.llm.backend.model_server import serve_model
from pyimpl.runtime import DistributedRuntime

VALID_PREFIXES = [
    "", "{", " {", '{"a"', '{"a":', '{"a": 1', '{"a":1}', '{ "a" : { } }', '{"a":[]', '{"a":[1, 2.5e-3, -0, 1E+9]',
    '{"a":tr', '{"a":true,"b":false,"c":null}', '{"k":"\\"\\\\\\/\\b\\f\\n\\r\\t"}', '{"k":"\\u00e9\\u20AC"}',
    '{"k":"\\u00', '{"k":"é 😀 漢字"}', '{"a":{"b":{"c":[{"d":[[]]}]}}}', '{"a":-', '{"a":1.', '{"a":1e-',
    '{\n  "a": [\n    1\n  ]\n}',
]
INVALID_PREFIXES = [
    "[", '"x"', "1", "x", "{a", "{,", '{"a",', '{"a"::', '{"a":1}}', '{"a":1} ', '{"a":1}x', '{"a":01', '{"a":1.}',
    '{"a":1.e5', '{"a":-a', '{"a":+1', '{"a":tru}', '{"a":nul,', '{"a":"\\x"', '{"a":"\\u12g"', '{"a":[1,]',
    '{"a":[1}', '{"a":{]', '{"a":"line\nbreak"}', '{"a":1,}', "{" + " " * (MAX_CONSECUTIVE_WHITESPACE + 1),
]


@pytest.mark.parametrize("text", VALID_PREFIXES)
def test_valid_prefixes_accepted(text):
    assert is_json_object_prefix(text)


@pytest.mark.parametrize("text", INVALID_PREFIXES)
def test_invalid_prefixes_rejected(text):
    assert not is_json_object_prefix(text)


def test_done_only_when_top_level_object_closes():
    state = JsonPrefixState()
    for piece, done in [('{"a":{"b":[1', False), (", {}]}", False), ("}", True)]:
        assert state.feed(piece) and state.done is done
    assert json.loads('{"a":{"b":[1, {}]}}') == {"a": {"b": [1, {}]}}


def test_feeding_piecewise_equals_feeding_whole():
    text = '{"num": -12.5e+3, "s": "a\\u0041b", "l": [true, null]}'
    state = JsonPrefixState()
    assert all(state.feed(text[i:i + 3]) for i in range(0, len(text), 3)) and state.done


# ---- the processor, over a scripted vocabulary -------------------------------------------------------------

EOS = 0
NEVER = 8  # a control character: valid nowhere in JSON, not even inside strings
VOCAB = [None, "{", "}", '"', "a", ":", "1", " ", "\x01", ",", "[", "]", '{"', '":', "  ", "\n"]


def _scripted_logits(preferences: list[int]) -> torch.Tensor:
    """Logits ranking `preferences` first, in order; every other token below them."""
    logits = torch.zeros(len(VOCAB))
    for rank, token_id in enumerate(preferences):
        logits[token_id] = 100.0 - rank
    return logits


def _greedy_run(processor, script: list[list[int]], steps: int = 20) -> list[int]:
    generated: list[int] = []
    for step in range(steps):
        prefs = script[step] if step < len(script) else [NEVER]  # forces the fallback scan
        logits = processor(generated, _scripted_logits(prefs))
        token = int(logits.argmax())
        generated.append(token)
        if token == EOS:
            break
    return generated


def test_processor_steers_to_a_complete_object_then_eos():
    processor = JsonObjectLogitsProcessor(VOCAB, [EOS], top_candidates=4)
    # the model "wants" an invalid token and EOS first at every step; the processor must keep the text valid
    N = NEVER
    script = [[N, EOS, 1], [N, EOS, 3], [N, 4], [N, 3], [N, 5], [N, 6], [N, EOS, 2], [N, 1], [EOS, N, 1]]
    generated = _greedy_run(processor, script)
    text = "".join(VOCAB[t] for t in generated if t != EOS)
    assert generated[-1] == EOS and json.loads(text) == {"a": 1}


def test_processor_masks_all_but_the_top_valid_candidates():
    processor = JsonObjectLogitsProcessor(VOCAB, [EOS], top_candidates=2)
    logits = processor([], _scripted_logits([NEVER, 12, 7, 1, 15]))
    kept = torch.isfinite(logits).nonzero().view(-1).tolist()
    assert sorted(kept) == [7, 12]  # '{"' and ' ' are the two best valid ones; EOS is not allowed yet


def test_processor_allows_only_eos_after_the_object_and_restarts_on_new_history():
    processor = JsonObjectLogitsProcessor(VOCAB, [EOS], top_candidates=4)
    closed = [1, 2]  # "{}"
    logits = processor(closed, _scripted_logits([1, 7]))
    assert torch.isfinite(logits).nonzero().view(-1).tolist() == [EOS]
    fresh = processor([], _scripted_logits([2, 1]))  # another history: the processor starts again
    assert torch.isfinite(fresh[1]) and not torch.isfinite(fresh[2])


def test_processor_bounds_whitespace_runs():
    processor = JsonObjectLogitsProcessor(VOCAB, [EOS], top_candidates=4)
    generated = _greedy_run(processor, [[1]] + [[7, 14, 15, NEVER]] * 30, steps=12)
    text = "".join(VOCAB[t] for t in generated if t != EOS)
    assert text.startswith("{") and is_json_object_prefix(text)
    leading = len(text[1:]) - len(text[1:].lstrip())
    assert 0 < leading <= MAX_CONSECUTIVE_WHITESPACE and len(text) > 1 + leading  # then something else was forced


# ---- end to end: torch engine on the tiny model, through the ModelManager --------------------------------------

def test_wire_request_asks_for_guided_decoding_only_for_json_object():
    body = {"model": "m", "messages": [{"role": "user", "content": "x"}]}
    plain = to_wire_request(parse_chat_request(body), [1, 2], 4)
    assert "guided_decoding" not in plain
    guided = to_wire_request(parse_chat_request({**body, "response_format": {"type": "json_object"}}), [1, 2], 4)
    assert guided["guided_decoding"] == {"json_object": True}


def test_token_texts_are_cached_and_exclude_special_tokens(tiny_model):
    from transformers import AutoTokenizer
    tokenizer = AutoTokenizer.from_pretrained(tiny_model, local_files_only=True)
    texts = token_texts(tokenizer)
    assert token_texts(tokenizer) is texts and len(texts) == len(tokenizer)
    assert all(texts[t] is None for t in tokenizer.all_special_ids)


@pytest.fixture
async def torch_manager(tiny_model):
    rt = await DistributedRuntime.create(discovery_backend="mem", request_plane="inproc")
    served = await serve_model(rt, tiny_model, model_name="tiny", engine="torch")
    manager = ModelManager(rt, no_worker_wait_s=0.5)
    await manager.start()
    await manager.wait_for_model("tiny", timeout=30)
    try:
        yield manager
    finally:
        await manager.stop()
        await served.stop()
        await rt.shutdown()


async def test_json_object_is_enforced_end_to_end(torch_manager):
    for i, (temperature, seed) in enumerate([(0.0, None), (1.0, 1), (1.0, 2), (0.7, 3), (1.2, 4)]):
        request = {"model": "tiny", "messages": [{"role": "user", "content": f"Describe item {i} as JSON."}],
                   "response_format": {"type": "json_object"}, "max_tokens": 64, "temperature": temperature}
        if seed is not None:
            request["seed"] = seed
        choice = (await torch_manager.chat_completion(request))["choices"][0]
        content = choice["message"]["content"]
        assert is_json_object_prefix(content), content
        if choice["finish_reason"] == "stop":
            assert isinstance(json.loads(content), dict)
    unguided = await torch_manager.chat_completion({"model": "tiny", "max_tokens": 16, "temperature": 0,
                                                    "messages": [{"role": "user", "content": "Describe item 0."}]})
    assert not is_json_object_prefix(unguided["choices"][0]["message"]["content"])  # random model, unconstrained
