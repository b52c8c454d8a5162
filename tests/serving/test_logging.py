"""Logs a production user can read (issue 11): at --log-level info one access line per request and a line for
every 5xx, and --log-format json (or DYN_LOGGING_JSONL=1) writes them, and everything else, as JSON lines."""
from __future__ import annotations

import json
import signal

import httpx
import pytest

from pyimpl.llm.model_card import ModelCard, card_key
from pyimpl.runtime import DistributedRuntime

from .conftest import Proc, start_frontend, start_worker, wait_for_models

CHAT = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 3}


def remaining_output(proc: Proc) -> list[str]:
    """Stop the process and return every line it wrote after it was ready."""
    proc.popen.send_signal(signal.SIGTERM)
    rest = proc.popen.stdout.read()
    proc.stop()
    return [*proc.output, *rest.splitlines()]


def json_lines(lines: list[str]) -> list[dict]:
    records = []
    for line in lines:
        line = line.strip()
        if not line or line.startswith(("frontend ready", "worker ready")):
            continue
        records.append(json.loads(line))       # every log line is one JSON object
    return records


async def test_access_log_and_server_errors_as_json_lines(serving_env, tiny_model):
    async def broken(request, context):
        raise RuntimeError("the engine fell over")
        yield  # pragma: no cover

    frontend, url = start_frontend(serving_env, "--log-level", "info", "--log-format", "json")
    worker = start_worker({**serving_env, "DYN_LOGGING_JSONL": "1"}, tiny_model, "--model-name", "tiny",
                          "--engine", "mock", "--log-level", "info")
    rt = await DistributedRuntime.create(discovery_backend="file", request_plane="tcp",
                                         file_kv_dir=serving_env["DYN_FILE_KV"])
    try:
        await rt.endpoint("broken.backend.generate").register(broken)
        card = ModelCard(name="broken", model_path=tiny_model, endpoint="broken.backend.generate")
        await rt.discovery.put(card_key("broken", rt.instance_id), card.to_dict())
        wait_for_models(url, lambda names: {"tiny", "broken"} <= set(names))
        async with httpx.AsyncClient(base_url=url, timeout=30) as http:
            assert (await http.post("/v1/chat/completions", json={"model": "tiny", **CHAT})).status_code == 200
            assert (await http.post("/v1/chat/completions", json={"model": "broken", **CHAT})).status_code == 500
            assert (await http.get("/v1/nothing-here")).status_code == 404
    finally:
        await rt.shutdown()
        records = json_lines(remaining_output(frontend))
        worker_records = json_lines(remaining_output(worker))
    access = [(r["method"], r["path"], r["status"]) for r in records if r["target"] == "pyimpl.frontend.access"]
    assert ("POST", "/v1/chat/completions", 200) in access and ("POST", "/v1/chat/completions", 500) in access
    assert ("GET", "/v1/nothing-here", 404) in access
    assert all(isinstance(r["duration_ms"], float) and r["time"] and r["level"] == "INFO"
               for r in records if r["target"] == "pyimpl.frontend.access")
    errors = [r for r in records if r["level"] == "ERROR"]
    assert any("500" in r["message"] and "the engine fell over" in r["message"] for r in errors), records
    started = [r for r in worker_records if r["target"] == "pyimpl.worker"]    # DYN_LOGGING_JSONL=1: JSON too
    assert started and started[0]["model"] == "tiny" and started[0]["tool_call_parser"] == "hermes"


def test_unknown_log_format_is_refused():
    from pyimpl.runtime.logs import configure_logging
    with pytest.raises(ValueError, match="unknown log format"):
        configure_logging("info", "xml")
