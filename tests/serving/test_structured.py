"""Structured decoding that holds (issue 13): json_schema, json_object and required/named tool_choice constrain
the torch engine's decoding (llguidance grammars), not only the prompt; checked on the random tiny model."""
from __future__ import annotations

import json

import jsonschema
import pytest

from pyimpl.llm.backend.guided import TOOL_CALL_FORMATS, GuidedTokenizer
from pyimpl.llm.backend.guided.grammars import GrammarUnsupported, grammar_for
from pyimpl.llm.errors import InvalidRequestError
from pyimpl.llm.frontend.model_manager import ModelManager
from pyimpl.llm.frontend.protocols import parse_chat_request, to_wire_request
from pyimpl.llm.text.parsers import get_tool_call_parser
from tests.conftest import torch_manager

SCHEMA = {"type": "object", "additionalProperties": False, "required": ["city", "unit", "days", "tags"],
          "properties": {"city": {"type": "string", "maxLength": 12}, "unit": {"enum": ["celsius", "fahrenheit"]},
                         "days": {"type": "integer", "minimum": 1, "maximum": 14},
                         "tags": {"type": "array", "items": {"type": "boolean"}, "maxItems": 3}}}
WEATHER = {"type": "object", "additionalProperties": False, "required": ["city"],
           "properties": {"city": {"type": "string", "maxLength": 10}}}
SEARCH = {"type": "object", "additionalProperties": False, "required": ["query", "limit"],
          "properties": {"query": {"type": "string", "maxLength": 10}, "limit": {"type": "integer", "minimum": 1,
                                                                                "maximum": 5}}}
TOOLS = [{"type": "function", "function": {"name": "get_weather", "parameters": WEATHER}},
         {"type": "function", "function": {"name": "search", "parameters": SEARCH, "strict": True}}]
BODY = {"model": "tiny", "messages": [{"role": "user", "content": "What is the weather in Paris?"}]}


def _wire(**extra) -> dict:
    return to_wire_request(parse_chat_request({**BODY, **extra}), [1, 2], 4)


def test_wire_request_carries_the_constraint_to_enforce():
    assert "guided_decoding" not in _wire()
    loose = [{"type": "function", "function": {"name": "get_weather", "parameters": WEATHER}}]
    assert "guided_decoding" not in _wire(tools=loose, tool_choice="auto")
    assert _wire(tools=TOOLS)["guided_decoding"]["tool_call"]["auto"] is True   # a strict tool: calls hold too
    assert _wire(response_format={"type": "json_object"})["guided_decoding"] == {"json_object": True}
    fmt = {"type": "json_schema", "json_schema": {"name": "w", "schema": SCHEMA, "strict": True}}
    assert _wire(response_format=fmt)["guided_decoding"] == {"json_schema": SCHEMA}
    required = _wire(tools=TOOLS, tool_choice="required")["guided_decoding"]["tool_call"]
    assert required["name"] is None and [t["name"] for t in required["tools"]] == ["get_weather", "search"]
    named = _wire(tools=TOOLS, tool_choice={"type": "function", "function": {"name": "search"}})
    assert named["guided_decoding"] == {"tool_call": {"tools": [{"name": "search", "parameters": SEARCH}],
                                                      "name": "search"}}


def test_tool_call_grammar_uses_the_models_tags_and_refuses_unknown_formats():
    spec = {"tools": [{"name": "search", "parameters": SEARCH}], "name": "search"}
    grammar = grammar_for({"tool_call": spec}, "hermes", {"<tool_call>": 1996, "</tool_call>": 1997})
    assert "<[1996]>" in grammar and "<[1997]>" in grammar     # single special tokens, matched as such
    assert '"<tool_call>' in grammar_for({"tool_call": spec}, "hermes", {})   # plain text where not a token
    with pytest.raises(GrammarUnsupported, match="pythonic"):
        grammar_for({"tool_call": spec}, "pythonic", {})


@pytest.mark.parametrize("parser", sorted(TOOL_CALL_FORMATS))
def test_each_enforced_format_is_what_its_parser_reads(parser, tiny_model):
    from transformers import AutoTokenizer
    hf = AutoTokenizer.from_pretrained(tiny_model, local_files_only=True)
    tokenizer = GuidedTokenizer(hf, len(hf), [hf.eos_token_id])
    fmt, spec = TOOL_CALL_FORMATS[parser], {"tools": [{"name": "search", "parameters": SEARCH},
                                                      {"name": "get_weather", "parameters": WEATHER}], "name": None}
    calls = [("search", {"query": "llm", "limit": 2}), ("get_weather", {"city": "Oslo"})]
    bodies = [json.dumps({"name": name, fmt.arguments_key: args}) for name, args in calls]
    text = fmt.list_open + fmt.separator.join(fmt.call_open + b + fmt.call_close for b in bodies) + fmt.list_close
    matcher = tokenizer.matcher(grammar_for({"tool_call": spec}, parser, tokenizer.added_tokens))
    assert matcher.consume_tokens(hf.encode(text, add_special_tokens=False)) and matcher.is_accepting(), text
    reader = get_tool_call_parser(parser)()
    found = reader.feed(text).tool_calls + reader.finish().tool_calls
    assert [(c.name, json.loads(c.arguments)) for c in found] == calls


@pytest.mark.parametrize("text, accepted", [
    ("Hello there", True),
    ('<tool_call>\n{"name": "search", "arguments": {"query": "x", "limit": 1}}\n</tool_call>', True),
    ('Sure.\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "Oslo"}}\n</tool_call>', True),
    ('<tool_call>\n{"name": "other", "arguments": {}}\n</tool_call>', False),
    ('x <tool_call>\n{"name": "search", "arguments": {"query": "x"}}\n</tool_call>', False)])
def test_strict_tools_under_auto_allow_text_or_valid_calls(text, accepted, tiny_model):
    from transformers import AutoTokenizer
    hf = AutoTokenizer.from_pretrained(tiny_model, local_files_only=True)
    tokenizer = GuidedTokenizer(hf, len(hf), [hf.eos_token_id])
    spec = _wire(tools=TOOLS)["guided_decoding"]
    matcher = tokenizer.matcher(grammar_for(spec, "hermes", tokenizer.added_tokens))
    ok = matcher.consume_tokens(hf.encode(text, add_special_tokens=False))
    assert (ok and matcher.is_accepting()) is accepted
    assert grammar_for(spec, "hermes", {}) is None       # a plain-text tag: free text could hide a bad call
    assert grammar_for(spec, "pythonic", {}) is None     # no grammar for the format: not enforced, no error


@pytest.mark.parametrize("reasoning, text, accepted", [
    (None, '{"a": 1}', True), (None, '<think>x</think>{"a": 1}', False),
    ("think", '<think>\nhmm {"a": 2}</think>\n\n{"a": 1}', True), ("think", '{"a": 1}', True),
    ("think", 'so</think>{"a": 1}', False), ("deepseek_r1", 'so</think>\n{"a": 1}', True),
    ("deepseek_r1", '<think>so</think>{"a": 1}', True), ("deepseek_r1", '{"a": 1}', False)])
def test_a_reasoning_block_may_come_before_the_constrained_answer(reasoning, text, accepted, tiny_model):
    from transformers import AutoTokenizer
    hf = AutoTokenizer.from_pretrained(tiny_model, local_files_only=True)
    tokenizer = GuidedTokenizer(hf, len(hf), [hf.eos_token_id])
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}
    matcher = tokenizer.matcher(grammar_for({"json_schema": schema}, None, tokenizer.added_tokens, reasoning))
    ok = matcher.consume_tokens(hf.encode(text, add_special_tokens=False))
    assert (ok and matcher.is_accepting()) is accepted


@pytest.fixture
async def manager(tiny_model):
    async with torch_manager(tiny_model, "tiny") as manager:
        yield manager


async def _sample(manager: ModelManager, n: int, **extra) -> list[dict]:
    request = {**BODY, "temperature": 1.0, "seed": 7, "n": n, "max_tokens": 120, **extra}
    return (await manager.chat_completion(request))["choices"]


async def test_structured_outputs_hold_on_a_random_model(manager):
    fmt = {"type": "json_schema", "json_schema": {"name": "weather", "schema": SCHEMA, "strict": True}}
    choices = await _sample(manager, 10, response_format=fmt) + await _sample(manager, 10, response_format=fmt, seed=8)
    for choice in choices:
        assert choice["finish_reason"] == "stop", choice
        jsonschema.validate(json.loads(choice["message"]["content"]), SCHEMA)
    objects = await _sample(manager, 6, response_format={"type": "json_object"}, temperature=0.7)
    assert all(c["message"]["content"].startswith("{") for c in objects)   # free-form: some run out of tokens
    finished = [json.loads(c["message"]["content"]) for c in objects if c["finish_reason"] == "stop"]
    assert finished and all(isinstance(obj, dict) for obj in finished)
    plain = await manager.chat_completion({**BODY, "max_tokens": 16, "temperature": 0})
    with pytest.raises(ValueError):      # unconstrained, the random model writes no JSON
        json.loads(plain["choices"][0]["message"]["content"])


async def test_required_and_named_tool_choice_always_call_a_tool(manager):
    schemas = {"get_weather": WEATHER, "search": SEARCH}
    for choice in await _sample(manager, 6, tools=TOOLS, tool_choice="required"):
        calls = choice["message"].get("tool_calls")
        assert choice["finish_reason"] == "tool_calls" and calls, choice
        for call in calls:
            jsonschema.validate(json.loads(call["function"]["arguments"]), schemas[call["function"]["name"]])
    for choice in await _sample(manager, 6, tools=TOOLS):       # auto with a strict tool: text or valid calls
        assert "<tool_call>" not in (choice["message"]["content"] or "")
        for call in choice["message"].get("tool_calls") or ():
            jsonschema.validate(json.loads(call["function"]["arguments"]), schemas[call["function"]["name"]])
    named = {"type": "function", "function": {"name": "search"}}
    for choice in await _sample(manager, 6, tools=TOOLS, tool_choice=named):
        calls = choice["message"].get("tool_calls")
        assert choice["finish_reason"] == "tool_calls" and [c["function"]["name"] for c in calls] == ["search"]
        jsonschema.validate(json.loads(calls[0]["function"]["arguments"]), SEARCH)


async def test_a_schema_that_cannot_be_enforced_is_the_clients_error(manager):
    fmt = {"type": "json_schema", "json_schema": {"name": "bad", "schema": {"type": "object", "properties":
                                                                           {"a": {"type": "no-such-type"}}}}}
    with pytest.raises(InvalidRequestError, match="response_format"):
        await manager.chat_completion({**BODY, "max_tokens": 8, "response_format": fmt})
