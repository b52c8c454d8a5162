"""Preprocessor: the folder's chat template with tools and tool results, tokenization, EOS ids, validation."""
from __future__ import annotations

import pytest

from pyimpl.llm.text.preprocessor import Preprocessor

TOOLS = [{"type": "function", "function": {
    "name": "get_weather", "description": "Weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]
CONVERSATION = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": [{"type": "text", "text": "Weather in "}, {"type": "text", "text": "Paris?"}]},
    {"role": "assistant", "content": None, "tool_calls": [{"id": "call_1", "type": "function", "function": {
        "name": "get_weather", "arguments": '{"city": "Paris"}'}}]},
    {"role": "tool", "tool_call_id": "call_1", "content": '{"temp_c": 21}'},
]


def test_chat_template_renders_tools_and_tool_results(pre):
    text = pre.render_chat(CONVERSATION, tools=TOOLS)
    assert '"name": "get_weather"' in text and "Weather for a city" in text
    assert '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}' in text
    assert '<tool_response>\n{"temp_c": 21}\n</tool_response>' in text
    assert "Weather in Paris?" in text
    assert text.endswith("<|im_start|>assistant\n")
    assert not pre.render_chat(CONVERSATION[:2], add_generation_prompt=False).endswith("assistant\n")


def test_chat_tokenizes_and_round_trips(pre):
    ids = pre.chat_token_ids(CONVERSATION, tools=TOOLS)
    im_start = pre.tokenizer.convert_tokens_to_ids("<|im_start|>")
    assert ids[0] == im_start
    assert pre.decode(ids, skip_special_tokens=False) == pre.render_chat(CONVERSATION, tools=TOOLS)
    assert pre.tokenize("Hello world") == pre.tokenizer.encode("Hello world", add_special_tokens=False)


def test_eos_ids_from_generation_config_config_and_tokenizer(pre):
    im_end, endoftext = pre.tokenizer.convert_tokens_to_ids(["<|im_end|>", "<|endoftext|>"])
    assert pre.eos_token_ids == [im_end, endoftext]


@pytest.mark.parametrize("messages,error", [
    ([], "non-empty"),
    ([{"content": "hi"}], r"messages\[0\] is missing 'role'"),
    ([{"role": "user"}], r"messages\[0\] is missing 'content'"),
    ([{"role": "user", "content": "a"}, {"role": "wizard", "content": "b"}], r"messages\[1\] has unknown role"),
    ([{"role": "user", "content": 5}], "content must be"),
    ([{"role": "user", "content": [{"type": "image_url"}]}], "text part"),
    ([{"role": "assistant", "content": None, "tool_calls": [{"function": {"name": "f", "arguments": "{"}}]}],
     "not valid JSON"),
])
def test_bad_messages_raise_clear_errors(pre, messages, error):
    with pytest.raises(ValueError, match=error):
        pre.render_chat(messages)


@pytest.mark.parametrize("tools", [[{"type": "function"}], [{"type": "retrieval", "function": {"name": "f"}}], ["f"]])
def test_bad_tools_raise_clear_errors(pre, tools):
    with pytest.raises(ValueError, match=r"tools\[0\]"):
        pre.render_chat([{"role": "user", "content": "hi"}], tools=tools)


def test_template_exceptions_become_value_errors(tmp_path, model_dir):
    for f in model_dir.iterdir():
        if f.name.startswith(("tokenizer", "special", "config", "generation")):
            (tmp_path / f.name).write_bytes(f.read_bytes())
    (tmp_path / "chat_template.jinja").write_text(
        "{% for m in messages %}{% if m.role == 'system' %}{{ raise_exception('no system role') }}"
        "{% endif %}{{ m.content }}{% endfor %}")
    strict = Preprocessor.from_model_dir(tmp_path)
    assert strict.render_chat([{"role": "user", "content": "hi"}]) == "hi"
    with pytest.raises(ValueError, match="no system role"):
        strict.render_chat([{"role": "system", "content": "x"}])


def test_missing_folder_is_a_value_error(tmp_path):
    with pytest.raises(ValueError, match="not found"):
        Preprocessor.from_model_dir(tmp_path / "absent")
