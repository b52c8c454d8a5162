"""Tool calls stream as OpenAI streams them: the first piece of a call has its id and name, the argument
text follows in pieces as it is generated, parallel calls get their own indexes; every parser."""
from __future__ import annotations

import json
import random
import time

import pytest

from pyimpl.llm.text.parsers import get_tool_call_parser

LONG = "Paris, the capital of France, on the Seine, " * 3
ARGS = {"city": LONG, "days": [1, 2, {"unit": "C}{"}]}
ARGS2 = {"tz": "CET"}


def call_text(parser: str) -> str:
    """Two parallel calls, the first with a long string argument, in `parser`'s syntax."""
    a, b = json.dumps(ARGS), json.dumps(ARGS2)
    return {
        "hermes": f'<tool_call>\n{{"name": "get_weather", "arguments": {a}}}\n</tool_call>\n'
                  f'<tool_call>{{"name": "get_time", "arguments": {b}}}</tool_call>',
        "llama3_json": f'<|python_tag|>{{"name": "get_weather", "parameters": {a}}}; '
                       f'{{"name": "get_time", "parameters": {b}}}',
        "mistral": f'[TOOL_CALLS] [{{"name": "get_weather", "arguments": {a}}}, '
                   f'{{"name": "get_time", "arguments": {b}}}]',
        "mistral_args": f'[TOOL_CALLS]get_weather[ARGS]{a}[TOOL_CALLS]get_time[ARGS]{b}',
        "pythonic": f'[get_weather(city={json.dumps(LONG)}, days={json.dumps(ARGS["days"])}), get_time(tz="CET")]',
    }[parser]


def feed_by_char(name: str, text: str) -> tuple[list, list, str]:
    """Feed one character at a time; return (the pieces of every step, the finished calls, the content)."""
    parser = get_tool_call_parser(name)()
    steps = [parser.feed(ch) for ch in text] + [parser.finish()]
    return ([s.tool_call_deltas for s in steps], [c for s in steps for c in s.tool_calls],
            "".join(s.content for s in steps))


@pytest.mark.parametrize("syntax", ["hermes", "llama3_json", "mistral", "mistral_args", "pythonic"])
def test_calls_stream_id_and_name_first_then_argument_pieces(syntax):
    name = syntax.split("_args")[0]
    steps, calls, content = feed_by_char(name, call_text(syntax))
    pieces = [p for step in steps for p in step]
    assert content == ""
    assert sorted({p.index for p in pieces}) == [0, 1]
    for index, (fn, args) in enumerate([("get_weather", ARGS), ("get_time", ARGS2)]):
        mine = [p for p in pieces if p.index == index]
        assert (mine[0].name, mine[0].id is not None) == (fn, True)
        assert all(p.id is None and p.name is None for p in mine[1:])
        joined = "".join(p.arguments for p in mine)
        assert json.loads(joined) == args
        assert calls[index].arguments == joined and calls[index].id == mine[0].id and calls[index].name == fn
    first = [p for p in pieces if p.index == 0]
    assert len(first) > len(LONG)   # one character a step: the long argument went out piece by piece
    # the name went out long before the call's text was complete
    first_step = next(i for i, step in enumerate(steps) if step)
    assert first_step < len(call_text(syntax)) / 4


@pytest.mark.parametrize("syntax", ["hermes", "llama3_json", "mistral", "mistral_args", "pythonic"])
def test_streamed_arguments_are_chunking_independent(syntax):
    name = syntax.split("_args")[0]
    text = call_text(syntax)
    parser = get_tool_call_parser(name)()
    whole = [parser.feed(text), parser.finish()]
    pieces = [p for step in whole for p in step.tool_call_deltas]
    assert [(p.index, p.name) for p in pieces] == [(0, "get_weather"), (1, "get_time")]   # one piece per call
    assert [json.loads(p.arguments) for p in pieces] == [ARGS, ARGS2]


def test_pythonic_values_become_json_as_json_dumps_writes_them():
    text = """[f(s='it"s \\n', t=(1, 2), n=None, b=True), g()]"""
    steps, calls, content = feed_by_char("pythonic", text)
    assert [(c.name, c.arguments) for c in calls] == [
        ("f", '{"s": "it\\"s \\n", "t": [1, 2], "n": null, "b": true}'), ("g", "{}")]
    assert content == ""


@pytest.mark.parametrize("name,text", [
    ("hermes", 'Hi <tool_call>{"name": "f", "arguments": {oops}}</tool_call>'),
    ("pythonic", "[f(1)] positional"),
    ("pythonic", "[f(a=x)]"),
])
def test_text_that_is_not_a_call_sends_no_piece(name, text):
    steps, calls, content = feed_by_char(name, text)
    assert not any(steps) and not calls and content == text


FRAGMENTS = ['<tool_call>', '</tool_call>', '{"name": "f", "arguments": {"a": "x\\"}"}}', '{"name": "g", "parameters": {}}',
             '<|python_tag|>', ';', ' ', 'hello', '[TOOL_CALLS]', '[ARGS]', '[', ']', 'f(a=1)', ', ', 'g(b="x]\\n")',
             'h(c=[1, {"d": "e)"}])', '{', '}', '"', 'é', '(', ')', '=', "'"]


def test_pieces_always_join_into_the_finished_calls():
    """Random mixes of call syntax, split at random: per index, the pieces are one call's id, name and arguments."""
    rng = random.Random(13)
    for _ in range(300):
        text = "".join(rng.choice(FRAGMENTS) for _ in range(rng.randint(1, 12)))
        cuts = sorted(rng.sample(range(1, len(text)), rng.randint(0, len(text) - 1))) if len(text) > 1 else []
        chunks = [text[a:b] for a, b in zip([0] + cuts, cuts + [len(text)])]
        for name in ("hermes", "llama3_json", "mistral", "pythonic"):
            parser = get_tool_call_parser(name)()
            steps = [parser.feed(c) for c in chunks] + [parser.finish()]
            pieces = [p for s in steps for p in s.tool_call_deltas]
            calls = [c for s in steps for c in s.tool_calls]
            assert sorted({p.index for p in pieces}) == list(range(len(calls))), (name, text)
            for i, call in enumerate(calls):
                mine = [p for p in pieces if p.index == i]
                assert (mine[0].id, mine[0].name) == (call.id, call.name), (name, text)
                assert "".join(p.arguments for p in mine) == call.arguments, (name, text)


@pytest.mark.parametrize("name,template", [
    ("hermes", '<tool_call>{{"name": "f", "arguments": {{"s": {}}}}}</tool_call>'),
    ("pythonic", "[f(s={})]"),
])
def test_a_long_argument_streams_in_linear_time(name, template):
    """20 kB of argument fed 4 characters at a time: ~50 ms here; a rescan per piece (quadratic) took 19 s."""
    text = template.format(json.dumps("word " * 4000))
    parser = get_tool_call_parser(name)()
    start = time.perf_counter()
    pieces = [p for i in range(0, len(text), 4) for p in parser.feed(text[i:i + 4]).tool_call_deltas]
    pieces += parser.finish().tool_call_deltas
    assert time.perf_counter() - start < 2.0
    assert json.loads("".join(p.arguments for p in pieces)) == {"s": "word " * 4000}
