"""OpenAI request validation: every rejected field is named; valid requests map onto the worker wire format."""
from __future__ import annotations

import pytest

from pyimpl.llm.frontend.aliases import parse_aliases
from pyimpl.llm.errors import InvalidRequestError
from pyimpl.llm.frontend.protocols import parse_chat_request, parse_completion_request, to_wire_request

MSG = [{"role": "user", "content": "hi"}]


@pytest.mark.parametrize("extra,param", [
    ({"model": 3}, "model"), ({"messages": "hi"}, "messages"), ({"messages": [{"role": "x", "content": "a"}]},
                                                                 "messages[0].role"),
    ({"messages": [{"role": "user", "content": 5}]}, "messages[0].content"), ({"n": 0}, "n"),
    ({"temperature": -1}, "temperature"), ({"top_p": 0}, "top_p"), ({"max_tokens": 0}, "max_tokens"),
    ({"max_completion_tokens": "9"}, "max_completion_tokens"), ({"stop": [""]}, "stop[0]"), ({"stream": "yes"}, "stream"),
    ({"top_logprobs": 3}, "top_logprobs"), ({"tools": [{"type": "function"}]}, "tools[0].function"),
    ({"tool_choice": "required"}, "tool_choice"), ({"response_format": {"type": "xml"}}, "response_format.type"),
    ({"stream_options": 1}, "stream_options"), ({"seed": 1.5}, "seed"), ({"seed": 1 << 64}, "seed"), ({"model": {}}, "model"), ({"ignore_eos": 1}, "ignore_eos"),
])
def test_chat_rejections_name_the_field(extra, param):
    with pytest.raises(InvalidRequestError) as err:
        parse_chat_request({"model": "m", "messages": MSG, **extra})
    assert err.value.param == param and err.value.status == 400


def test_chat_request_to_wire():
    req = parse_chat_request({"model": "m", "messages": MSG, "temperature": 0, "top_k": 5, "seed": 7, "n": 2,
                              "stop": "END", "ignore_eos": True, "logprobs": True, "top_logprobs": 3,
                              "max_completion_tokens": 9, "stream": True,
                              "stream_options": {"include_usage": True}})
    assert (req.n, req.stop, req.include_usage, req.max_tokens) == (2, ["END"], True, 9)
    wire = to_wire_request(req, [1, 2, 3], max_tokens=9, seed_offset=1)
    assert wire == {"token_ids": [1, 2, 3], "sampling_options": {"temperature": 0, "top_k": 5, "seed": 8},
                    "stop_conditions": {"max_tokens": 9, "min_tokens": 0, "stop_token_ids": [], "ignore_eos": True},
                    "output_options": {"logprobs": 3}}


def test_completion_prompts():
    assert parse_completion_request({"model": "m", "prompt": ["one"]}).prompt == "one"
    assert parse_completion_request({"model": "m", "prompt": [5, 6]}).prompt == [5, 6]
    for bad in ("", ["a", "b"], [[1], [2]], None, [-1]):
        with pytest.raises(InvalidRequestError) as err:
            parse_completion_request({"model": "m", "prompt": bad})
        assert err.value.param.startswith("prompt")  # the exact path: "prompt" or "prompt[0]"
    req = parse_completion_request({"model": "m", "prompt": "x", "logprobs": 2})
    assert req.logprobs and req.top_logprobs == 2


def test_aliases_merge_under_user_fields():
    aliases = parse_aliases({"fast": {"model": "tiny", "params": {"max_tokens": 3, "temperature": 0}},
                             "plain": "tiny"})
    assert aliases["fast"].apply({"model": "fast", "max_tokens": 9}) == {"model": "tiny", "max_tokens": 9,
                                                                        "temperature": 0}
    assert aliases["plain"].apply({"model": "plain"}) == {"model": "tiny"}
    with pytest.raises(ValueError):
        parse_aliases({"broken": {"params": {}}})


def _tool(name: str) -> dict:
    return {"type": "function", "function": {"name": name, "parameters": {"type": "object"}}}


def test_tool_choice_none_offers_no_tools_and_named_offers_only_that_one():
    tools = [_tool("get_weather"), _tool("get_time")]
    assert parse_chat_request({"model": "m", "messages": MSG, "tools": tools, "tool_choice": "none"}).tools is None
    named = parse_chat_request({"model": "m", "messages": MSG, "tools": tools,
                                "tool_choice": {"type": "function", "function": {"name": "get_time"}}})
    assert [t["function"]["name"] for t in named.tools] == ["get_time"]
    assert len(parse_chat_request({"model": "m", "messages": MSG, "tools": tools, "tool_choice": "auto"}).tools) == 2
    with pytest.raises(InvalidRequestError) as err:
        parse_chat_request({"model": "m", "messages": MSG, "tools": tools,
                            "tool_choice": {"type": "function", "function": {"name": "nope"}}})
    assert err.value.param == "tool_choice"
