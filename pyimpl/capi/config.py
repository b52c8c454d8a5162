"""The JSON config of dynamo_runtime_create, parsed and checked (unknown keys are errors)."""
from __future__ import annotations

import json
from dataclasses import dataclass

from pyimpl.capi.status import ERR_INVALID_ARGUMENT, CapiError

DISCOVERY = ("mem", "file", "nats")
REQUEST_PLANES = ("inproc", "tcp", "nats")
ENGINES = ("torch", "mock")


@dataclass
class EmbeddedConfig:
    """What one C runtime handle runs: a DistributedRuntime, maybe a served model, maybe a mock endpoint."""

    discovery: str = "mem"
    request_plane: str = "inproc"
    nats_url: str | None = None
    file_kv_dir: str | None = None
    model: str | None = None          # None: the demo model (when serve_model)
    model_name: str | None = None
    engine: str = "torch"
    serve_model: bool = True
    mock_endpoint: str | None = None


_TYPES = {"discovery": str, "request_plane": str, "nats_url": str, "file_kv_dir": str, "model": str,
          "model_name": str, "engine": str, "serve_model": bool, "mock_endpoint": str}


def _bad(message: str) -> CapiError:
    return CapiError(ERR_INVALID_ARGUMENT, f"config: {message}")


def parse_config(text: str | None) -> EmbeddedConfig:
    """Parse config_json; raises CapiError(DYNAMO_ERR_INVALID_ARGUMENT) on anything unexpected."""
    try:
        raw = json.loads(text or "{}")
    except ValueError as exc:
        raise _bad(f"malformed JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise _bad("must be a JSON object")
    unknown = sorted(set(raw) - set(_TYPES))
    if unknown:
        raise _bad(f"unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(_TYPES))}")
    for key, value in raw.items():
        if not isinstance(value, _TYPES[key]):
            raise _bad(f"{key!r} must be a {_TYPES[key].__name__}")
    distributed = raw.get("discovery", "mem") != "mem"
    raw.setdefault("serve_model", not distributed or "model" in raw)
    raw.setdefault("request_plane", "nats" if raw.get("discovery") == "nats" else "tcp" if distributed else "inproc")
    config = EmbeddedConfig(**raw)
    if config.discovery not in DISCOVERY:
        raise _bad(f"discovery must be one of {DISCOVERY}")
    if config.request_plane not in REQUEST_PLANES:
        raise _bad(f"request_plane must be one of {REQUEST_PLANES}")
    if config.engine not in ENGINES:
        raise _bad(f"engine must be one of {ENGINES}")
    if config.mock_endpoint is not None and len(config.mock_endpoint.split(".")) != 3:
        raise _bad("mock_endpoint must be 'namespace.component.endpoint'")
    return config
