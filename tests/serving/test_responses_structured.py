"""/v1/responses' text.format and tool_choice reach the chat path's enforced decoding: ResponsesService over an
in-process ModelManager with the torch engine on the random tiny model (the embedded runtime, no HTTP)."""
from __future__ import annotations

import json

import jsonschema

from pyimpl.llm.responses import MemoryResponseStore, ResponsesService

from .test_structured import SCHEMA, SEARCH, WEATHER, manager  # noqa: F401  (manager: the served tiny model)

TOOLS = [{"type": "function", "name": "get_weather", "parameters": WEATHER},
         {"type": "function", "name": "search", "parameters": SEARCH}]


async def test_json_schema_format_and_named_tool_choice_hold(manager):  # noqa: F811
    service = ResponsesService(lambda: manager, MemoryResponseStore())
    body = {"model": "tiny", "input": "What is the weather in Paris?", "temperature": 1.0,
            "max_output_tokens": 120}
    fmt = {"type": "json_schema", "name": "weather", "schema": SCHEMA, "strict": True}
    for _ in range(3):
        response = await service.create({**body, "text": {"format": fmt}})
        assert response["status"] == "completed", response
        jsonschema.validate(json.loads(response["output"][0]["content"][0]["text"]), SCHEMA)
        assert response["text"]["format"] == fmt
    for _ in range(3):
        response = await service.create({**body, "tools": TOOLS, "tool_choice": {"type": "function",
                                                                                 "name": "search"}})
        calls = [item for item in response["output"] if item["type"] == "function_call"]
        assert [call["name"] for call in calls] == ["search"], response
        jsonschema.validate(json.loads(calls[0]["arguments"]), SEARCH)
