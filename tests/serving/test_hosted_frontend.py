"""python -m pyimpl.frontend --models FILE: a single-process server holding several models, at most
max_loaded_models loaded; /v1/models lists loaded and loadable models with their state, and requests switch
the loaded model (in-process app: Starlette's TestClient runs the lifespan)."""
import json

import pytest
from starlette.testclient import TestClient

from pyimpl.frontend.__main__ import build_app, parse_args
from pyimpl.models import tiny_model_path


@pytest.fixture
def client(tmp_path, monkeypatch):
    for name in ("DYN_DISCOVERY_BACKEND", "DYN_REQUEST_PLANE", "NATS_SERVER", "DYN_FILE_KV"):
        monkeypatch.delenv(name, raising=False)
    path = str(tiny_model_path())
    models = tmp_path / "models.json"
    models.write_text(json.dumps({"max_loaded_models": 1, "models": [
        {"name": "first", "path": path, "aliases": ["one"], "params": {"max_tokens": 3}},
        {"name": "second", "path": path}]}))
    with TestClient(build_app(parse_args(["--models", str(models), "--engine", "mock"]))) as client:
        yield client


def states(client) -> dict:
    """id -> status of /v1/models (names, then the aliases of loaded ones); each id once."""
    data = client.get("/v1/models").json()["data"]
    assert len({entry["id"] for entry in data}) == len(data)
    return {entry["id"]: entry["status"] for entry in data}


def chat(client, model: str) -> dict:
    reply = client.post("/v1/chat/completions", json={"model": model, "max_tokens": 4, "ignore_eos": True,
                                                      "messages": [{"role": "user", "content": "Hi"}]})
    assert reply.status_code == 200, reply.text
    return reply.json()


def test_requests_load_and_switch_models(client):
    assert states(client) == {"first": "unloaded", "second": "unloaded"}
    chat(client, "first")
    assert states(client) == {"first": "loaded", "one": "loaded", "second": "unloaded"}
    chat(client, "second")  # DropAndLoad
    assert states(client) == {"second": "loaded", "first": "unloaded"}
    reply = client.post("/v1/chat/completions", json={"model": "one", "ignore_eos": True,  # alias + its params
                                                      "messages": [{"role": "user", "content": "Hi"}]}).json()
    assert reply["usage"]["completion_tokens"] == 3
    assert states(client)["first"] == "loaded"


def test_a_bad_models_file_fails_at_start(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"models": [{"name": "x"}]}))
    with pytest.raises(ValueError, match='"name" and a "path"'):
        build_app(parse_args(["--models", str(bad)]))
