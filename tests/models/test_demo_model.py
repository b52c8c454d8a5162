"""The committed demo model answers its known prompts through the chat template with greedy decoding."""
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from pyimpl.models import demo_model_path
from pyimpl.models.demo_corpus import CITIES, QA, WEATHER_TOOL
from pyimpl.models.train_demo import generate_answer

HELLO = "I am the dynamo-llm-capi demo model, a tiny LLM served from C through an embedded Python runtime."


@pytest.fixture(scope="module")
def demo():
    path = demo_model_path()
    return AutoTokenizer.from_pretrained(path), AutoModelForCausalLM.from_pretrained(path).eval()


def test_folder_is_small_fp32_llama():
    path = demo_model_path()
    assert (path / "model.safetensors").stat().st_size <= 8_000_000
    model = AutoModelForCausalLM.from_pretrained(path)
    assert type(model).__name__ == "LlamaForCausalLM" and model.dtype == torch.float32


def test_hello_who_are_you(demo):
    tok, model = demo
    assert generate_answer(model, tok, [{"role": "user", "content": "Hello, who are you?"}]) == (HELLO, True)


def test_hello_with_system_prompt(demo):
    tok, model = demo
    messages = [{"role": "system", "content": "You are a helpful assistant."},
                {"role": "user", "content": "Hello, who are you?"}]
    assert generate_answer(model, tok, messages) == (HELLO, True)


@pytest.mark.parametrize("prompts,answer", QA, ids=[p[0] for p, _ in QA])
def test_every_known_prompt(demo, prompts, answer):
    tok, model = demo
    assert generate_answer(model, tok, [{"role": "user", "content": prompts[0]}]) == (answer, True)


@pytest.mark.parametrize("city", CITIES)
def test_weather_tool_call(demo, city):
    tok, model = demo
    got = generate_answer(model, tok, [{"role": "user", "content": f"What is the weather in {city}?"}], [WEATHER_TOOL])
    assert got == (f'<tool_call>\n{{"name": "get_weather", "arguments": {{"city": "{city}"}}}}\n</tool_call>', True)


@pytest.mark.parametrize("prompt", ["What is the airspeed of a swallow?", "Please summarise this document."])
def test_unknown_prompt_gets_a_short_answer_that_stops(demo, prompt):
    tok, model = demo
    text, ended = generate_answer(model, tok, [{"role": "user", "content": prompt}], max_new_tokens=64)
    assert ended and len(text) < 200
