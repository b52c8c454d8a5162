"""Tool-call and reasoning parser names are checked at start, and a worker picks the tool-call parser from the
model's chat template when none is given (issue 11: unknown names failed every request with a 500; the README's
worker command left tool calls as raw <tool_call> text)."""
from __future__ import annotations

import asyncio
import json
import subprocess
import sys

import pytest

from pyimpl.llm.backend.model_server import serve_model
from pyimpl.llm.frontend.model_manager import ModelManager
from pyimpl.llm.model_card import ModelCard, card_key
from pyimpl.runtime import DistributedRuntime

from .conftest import REPO

TOOLS = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]
CALL = '<tool_call>{"name": "get_weather", "arguments": {"city": "Paris"}}</tool_call>'


@pytest.mark.parametrize("flag, known", [("--tool-call-parser", "hermes"), ("--reasoning-parser", "think")])
def test_worker_cli_refuses_an_unknown_parser_at_start(flag, known, tiny_model):
    out = subprocess.run([sys.executable, "-m", "pyimpl.worker", "--model", tiny_model, flag, "nope"], cwd=REPO,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "invalid choice: 'nope'" in out.stderr and known in out.stderr


@pytest.fixture
async def runtime():
    rt = await DistributedRuntime.create(discovery_backend="mem", request_plane="inproc")
    yield rt
    await rt.shutdown()


async def test_serve_model_refuses_an_unknown_parser(runtime, tiny_model):
    with pytest.raises(ValueError, match="unknown tool call parser 'nope'; known: hermes"):
        await serve_model(runtime, tiny_model, model_name="t", engine="mock", tool_call_parser="nope")
    with pytest.raises(ValueError, match="unknown reasoning parser"):
        await serve_model(runtime, tiny_model, model_name="t", engine="mock", reasoning_parser="nope")


async def test_tool_call_parser_comes_from_the_chat_template(runtime, tiny_model):
    served = await serve_model(runtime, tiny_model, model_name="tiny", engine="mock")   # no parser named
    manager = ModelManager(runtime)
    await manager.start()
    try:
        assert served.card.tool_call_parser == "hermes"          # the template writes <tool_call>
        await manager.wait_for_model("tiny", timeout=30)
        result = await manager.chat_completion({"model": "tiny", "messages": [{"role": "user", "content": CALL}],
                                                "tools": TOOLS, "max_tokens": 400})
        choice = result["choices"][0]
        assert choice["finish_reason"] == "tool_calls"
        assert [json.loads(c["function"]["arguments"]) for c in choice["message"]["tool_calls"]] == [{"city": "Paris"}]
    finally:
        await manager.stop()
        await served.stop()


async def test_frontend_refuses_a_card_naming_an_unknown_parser(runtime, tiny_model):
    manager = ModelManager(runtime)
    await manager.start()
    try:
        card = ModelCard(name="odd", model_path=tiny_model, tool_call_parser="from-the-future")
        await runtime.discovery.put(card_key("odd", 7), card.to_dict())
        good = ModelCard(name="fine", model_path=tiny_model, tool_call_parser="hermes")
        await runtime.discovery.put(card_key("fine", 8), good.to_dict())
        for _ in range(100):
            if "fine" in manager.models:
                break
            await asyncio.sleep(0.02)
        assert "fine" in manager.models and "odd" not in manager.models
    finally:
        await manager.stop()
