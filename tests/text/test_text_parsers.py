"""Tool-call and reasoning parsers on streamed text: char by char == all at once, partial tags, fallbacks."""
from __future__ import annotations

import json
import random
import re

import pytest

from pyimpl.llm.text.parsers import get_reasoning_parser, get_tool_call_parser


def run_tool_parser(name: str, chunks: list[str]) -> tuple[str, list[tuple[str, dict]], list[str]]:
    """Feed chunks, then finish; return (content, [(name, arguments)], ids)."""
    parser = get_tool_call_parser(name)()
    deltas = [parser.feed(c) for c in chunks] + [parser.finish()]
    calls = [call for d in deltas for call in d.tool_calls]
    return ("".join(d.content for d in deltas),
            [(c.name, json.loads(c.arguments)) for c in calls], [c.id for c in calls])


def parse_both_ways(name: str, text: str) -> tuple[str, list[tuple[str, dict]]]:
    """Parse `text` fed all at once and one character at a time; assert both agree."""
    whole = run_tool_parser(name, [text])
    chars = run_tool_parser(name, list(text))
    assert whole[:2] == chars[:2]
    return whole[:2]


TOOL_CASES = [
    ("hermes",
     'Let me check.<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>\n'
     '<tool_call>{"name": "get_time", "arguments": {"tz": "CET"}}</tool_call>',
     "Let me check.", [("get_weather", {"city": "Paris"}), ("get_time", {"tz": "CET"})]),
    ("llama3_json", '{"name": "get_weather", "parameters": {"city": "Paris"}}',
     "", [("get_weather", {"city": "Paris"})]),
    ("llama3_json", '<|python_tag|>{"name": "a", "arguments": {"x": 1}}; {"name": "b", "parameters": {}}',
     "", [("a", {"x": 1}), ("b", {})]),
    ("llama3_json", 'Sure.<|python_tag|>{"name": "a", "parameters": {"s": "}{"}}',
     "Sure.", [("a", {"s": "}{"})]),
    ("mistral", 'Calling.[TOOL_CALLS] [{"name": "get_weather", "arguments": {"city": "Paris"}}, '
                '{"name": "get_time", "arguments": "{\\"tz\\": \\"CET\\"}"}]',
     "Calling.", [("get_weather", {"city": "Paris"}), ("get_time", {"tz": "CET"})]),
    ("mistral", '[TOOL_CALLS]get_weather[ARGS]{"city": "Paris"}[TOOL_CALLS]get_time[ARGS]{}',
     "", [("get_weather", {"city": "Paris"}), ("get_time", {})]),
    ("pythonic", '[get_weather(city="Paris", days=[1, 2]), mod.get_time(tz="a]b", dst=True)]',
     "", [("get_weather", {"city": "Paris", "days": [1, 2]}), ("mod.get_time", {"tz": "a]b", "dst": True})]),
    ("pythonic", '<|python_start|>[f(a=1)]<|python_end|> done', "done", [("f", {"a": 1})]),
]


@pytest.mark.parametrize("name,text,content,calls", TOOL_CASES)
def test_tool_calls_parsed_identically_streamed_and_whole(name, text, content, calls):
    assert parse_both_ways(name, text) == (content, calls)


@pytest.mark.parametrize("name", ["hermes", "llama3_json", "mistral", "pythonic"])
def test_plain_text_passes_through_without_delay(name):
    parser = get_tool_call_parser(name)()
    text = "Hello there, nothing to call here. 1 < 2 and [x] is fine."
    streamed = "".join(parser.feed(ch).content for ch in text)
    rest = parser.finish()
    assert streamed + rest.content == text and not rest.tool_calls
    # Every character was out before finish, except a possible partial-tag prefix at the end.
    assert len(rest.content) <= 1


@pytest.mark.parametrize("name,text", [
    ("hermes", 'Hi <tool_call>{"name": "f", "arguments": {oops}}</tool_call> bye'),
    ("hermes", 'Hi <tool_call>{"arguments": {}}</tool_call>'),
    ("hermes", 'Hi <tool_call>{"name": "f", "argum'),
    ("llama3_json", '{"answer": 42} is the JSON'),
    ("mistral", '[TOOL_CALLS] [{"name": "f", "arguments": {broken}]'),
    ("mistral", '[TOOL_CALLS] [{"nom": "f"}]'),
    ("pythonic", '[f(a=1'),
    ("pythonic", '[1, 2, 3] is a list'),
])
def test_malformed_tool_calls_fall_back_to_content(name, text):
    assert parse_both_ways(name, text) == (text, [])


def test_a_call_whose_arguments_streamed_stays_a_call_when_the_stream_stops():
    """Contract change (issue 13: streamed tool calls): once a call's name and arguments went out it cannot be
    taken back, so a call the model leaves unclosed is still a call (before: the whole text became content)."""
    assert parse_both_ways("llama3_json", '{"name": "f", "parameters": {"a": 1}') == ("", [("f", {"a": 1})])
    assert parse_both_ways("hermes", '<tool_call>{"name": "f", "arguments": {"a": 1}}') == ("", [("f", {"a": 1})])
    # a pythonic list whose later element is not a call: the calls before it stay, the rest is content
    assert parse_both_ways("pythonic", '[f(a=1), g(b=undefined_name)]') == ("g(b=undefined_name)]", [("f", {"a": 1})])


def test_partial_tag_is_held_then_released():
    parser = get_tool_call_parser("hermes")()
    assert parser.feed("abc<tool").content == "abc"
    assert parser.feed("box>").content == "<toolbox>"
    assert parser.feed("<tool_ca").content == ""
    assert parser.finish().content == "<tool_ca"


def test_tool_call_ids_are_fresh_openai_style():
    _, _, ids = run_tool_parser("hermes", ['<tool_call>{"name": "f", "arguments": {}}</tool_call>'] * 2)
    assert len(ids) == 2 and ids[0] != ids[1]
    assert all(re.fullmatch(r"call_[0-9a-f]{24}", i) for i in ids)


def test_unknown_parser_names_are_rejected():
    with pytest.raises(ValueError, match="hermes"):
        get_tool_call_parser("nope")
    with pytest.raises(ValueError, match="deepseek_r1"):
        get_reasoning_parser("nope")


def run_reasoning(name: str, chunks: list[str]) -> tuple[str, str]:
    parser = get_reasoning_parser(name)()
    deltas = [parser.feed(c) for c in chunks] + [parser.finish()]
    return "".join(d.reasoning_content for d in deltas), "".join(d.content for d in deltas)


@pytest.mark.parametrize("name,text,reasoning,content", [
    ("think", "<think>\nLet me think.\n</think>\n\nThe answer is 4.", "Let me think.\n", "The answer is 4."),
    ("think", "No thinking today <b>bold</b>.", "", "No thinking today <b>bold</b>."),
    ("think", "<think>unfinished </thi", "unfinished </thi", ""),
    ("deepseek_r1", "Hmm, 2+2.\n</think>\n4", "Hmm, 2+2.\n", "4"),
    ("deepseek_r1", "<think>Hmm.</think>4 <think>not again</think>", "Hmm.", "4 <think>not again</think>"),
    ("deepseek_r1", "still thinking", "still thinking", ""),
])
def test_reasoning_split_identically_streamed_and_whole(name, text, reasoning, content):
    assert run_reasoning(name, [text]) == run_reasoning(name, list(text)) == (reasoning, content)


def test_think_content_streams_before_end():
    parser = get_reasoning_parser("think")()
    assert parser.feed("Plain answer <").content == "Plain answer "
    assert parser.feed("x").content == "<x"


@pytest.mark.parametrize("name,text,content,calls", TOOL_CASES)
def test_tool_calls_identical_under_random_chunking(name, text, content, calls):
    rng = random.Random(len(text))
    for _ in range(20):
        cuts = sorted(rng.sample(range(1, len(text)), rng.randint(1, 6)))
        chunks = [text[a:b] for a, b in zip([0] + cuts, cuts + [len(text)])]
        assert run_tool_parser(name, chunks)[:2] == (content, calls)


def test_reasoning_then_tool_calls_chain():
    """The serving layer feeds reasoning-parser content into the tool parser; both stream cleanly."""
    text = '<think>need weather</think>\n<tool_call>{"name": "w", "arguments": {"c": "Oslo"}}</tool_call>'
    reasoning, tools = get_reasoning_parser("think")(), get_tool_call_parser("hermes")()
    thought, content, calls = "", "", []
    for ch in text:
        r = reasoning.feed(ch)
        thought += r.reasoning_content
        t = tools.feed(r.content)
        content, calls = content + t.content, calls + t.tool_calls
    r = reasoning.finish()
    for t in (tools.feed(r.content), tools.finish()):
        content, calls = content + t.content, calls + t.tool_calls
    assert (thought, content) == ("need weather", "")
    assert [(c.name, json.loads(c.arguments)) for c in calls] == [("w", {"c": "Oslo"})]
    assert tools.tool_calls_count == 1


FRAGMENTS = ['<tool_call>', '</tool_call>', '{"name": "f", "arguments": {"a": 1}}', '{"name": "g", "parameters": {}}',
             '<|python_tag|>', ';', ' ', '\n', 'hello', '[TOOL_CALLS]', '[ARGS]', '[', ']', 'f(a=1)', ', ',
             'g(b="x]")', '<|python_start|>', '<|python_end|>', '<think>', '</think>', '<', '{', '}', '"', 'é',
             '🎉', '<tool', '</thi']


def random_chunks(text: str, rng: random.Random) -> list[str]:
    cuts = sorted(rng.sample(range(1, len(text)), rng.randint(0, len(text) - 1))) if len(text) > 1 else []
    return [text[a:b] for a, b in zip([0] + cuts, cuts + [len(text)])]


def test_parsers_are_chunking_independent_on_random_text():
    """Random mixes of tags, JSON and text: every parser gives the same result however the text is split."""
    rng = random.Random(7)
    for _ in range(200):
        text = "".join(rng.choice(FRAGMENTS) for _ in range(rng.randint(1, 15)))
        for name in ("hermes", "llama3_json", "mistral", "pythonic"):
            expected = run_tool_parser(name, [text])[:2]
            assert run_tool_parser(name, list(text))[:2] == expected, (name, text)
            assert run_tool_parser(name, random_chunks(text, rng))[:2] == expected, (name, text)
        for name in ("think", "deepseek_r1"):
            assert run_reasoning(name, list(text)) == run_reasoning(name, random_chunks(text, rng)) \
                == run_reasoning(name, [text]), (name, text)
