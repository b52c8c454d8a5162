"""The ChatML template renders system/user/assistant/tool messages, tools and the generation prompt."""
import json
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest
from transformers import AutoTokenizer

from pyimpl.models import tiny_model_path

WEATHER_TOOL = {"type": "function", "function": {
    "name": "get_weather", "description": "Get the weather",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}


@pytest.fixture(scope="module", params=["llama", "qwen2"])
def tok(request):
    return AutoTokenizer.from_pretrained(tiny_model_path(request.param))


def render(tok, messages, **kw):
    return tok.apply_chat_template(messages, tokenize=False, **kw)


def test_system_user_and_generation_prompt(tok):
    text = render(tok, [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
                  add_generation_prompt=True)
    assert text == ("<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
                    "<|im_start|>assistant\n")


def test_default_system_prompt_and_no_generation_prompt(tok):
    text = render(tok, [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}])
    assert text == ("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
                    "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello!<|im_end|>\n")


def test_tools_in_system_prompt(tok):
    text = render(tok, [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Weather?"}],
                  tools=[WEATHER_TOOL], add_generation_prompt=True)
    assert text.startswith("<|im_start|>system\nBe brief.\n\n# Tools\n")
    tools_block = text.split("<tools>\n", 1)[1].split("\n</tools>", 1)[0]
    assert json.loads(tools_block) == WEATHER_TOOL
    assert "<tool_call>" in text and text.endswith("<|im_start|>user\nWeather?<|im_end|>\n<|im_start|>assistant\n")


@pytest.mark.parametrize("arguments", ['{"city": "Paris"}', {"city": "Paris"}])
def test_assistant_tool_calls_and_tool_results(tok, arguments):
    messages = [
        {"role": "user", "content": "Weather in Paris and Rome?"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "c0", "type": "function", "function": {"name": "get_weather", "arguments": arguments}},
            {"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Rome"}'}}]},
        {"role": "tool", "tool_call_id": "c0", "content": '{"temp": 18}'},
        {"role": "tool", "tool_call_id": "c1", "content": '{"temp": 21}'},
        {"role": "assistant", "content": "18 and 21 degrees."},
    ]
    text = render(tok, messages, tools=[WEATHER_TOOL])
    assert ('<|im_start|>assistant\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>\n'
            '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Rome"}}\n</tool_call><|im_end|>\n') in text
    assert ('<|im_start|>user\n<tool_response>\n{"temp": 18}\n</tool_response>\n'
            '<tool_response>\n{"temp": 21}\n</tool_response><|im_end|>\n') in text
    assert text.endswith("<|im_start|>assistant\n18 and 21 degrees.<|im_end|>\n")


def test_content_parts_are_joined(tok):
    text = render(tok, [{"role": "user", "content": [{"type": "text", "text": "Hello "}, {"type": "text", "text": "there"}]}])
    assert "<|im_start|>user\nHello there<|im_end|>\n" in text


def test_template_tokenizes_markers_as_single_tokens(tok):
    ids = tok.apply_chat_template([{"role": "user", "content": "Hi"}], add_generation_prompt=True, tokenize=True,
                                  return_dict=False)
    im_start, im_end = tok.convert_tokens_to_ids(["<|im_start|>", "<|im_end|>"])
    assert ids[0] == im_start and ids.count(im_start) == 3 and ids.count(im_end) == 2
