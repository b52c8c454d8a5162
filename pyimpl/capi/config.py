"""The JSON config of dynamo_runtime_create, parsed and checked (unknown keys are errors)."""
from __future__ import annotations

import json
import os
from dataclasses import dataclass

from pyimpl.capi.status import ERR_INVALID_ARGUMENT, ERR_NOT_FOUND, CapiError
from pyimpl.llm.frontend.migration import DEFAULT_MIGRATION_LIMIT, migration_limit_from_env
from pyimpl.llm.frontend.model_host import parse_models
from pyimpl.llm.frontend.routing import ROUTER_MODES, RouterSettings
from pyimpl.runtime.config import ENV_NAMES, env_setting

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
    migration_limit: int = DEFAULT_MIGRATION_LIMIT  # re-sends of a request whose worker is lost (0: off)
    router_mode: str = "round-robin"  # the frontend's flags of the same names (--router-mode, ...)
    kv_overlap_score_weight: float = 1.0
    router_temperature: float = 0.0
    no_kv_events: bool = False
    kv_cache_block_size: int | None = None
    models: list | None = None        # HostedModel list: several models loaded on demand (multi-model hosting)
    max_loaded_models: int = 1        # at most this many of them loaded at once

    def router_settings(self) -> RouterSettings:
        """How the runtime's ModelManager chooses workers (ValueError for values the router refuses)."""
        return RouterSettings(mode=self.router_mode, overlap_score_weight=self.kv_overlap_score_weight,
                              router_temperature=self.router_temperature, use_kv_events=not self.no_kv_events,
                              kv_cache_block_size=self.kv_cache_block_size)


_KIND = {str: "a string", bool: "true or false", int: "a whole number >= 0", float: "a number >= 0",
         list: "an array"}
_FROM_ENV = {"discovery": "discovery_backend", "request_plane": "request_plane"}  # key -> RuntimeConfig field
_TYPES = {"discovery": str, "request_plane": str, "nats_url": str, "file_kv_dir": str, "model": str,
          "model_name": str, "engine": str, "serve_model": bool, "mock_endpoint": str,
          "migration_limit": int, "router_mode": str, "kv_overlap_score_weight": float,
          "router_temperature": float, "no_kv_events": bool, "kv_cache_block_size": int,
          "models": list, "max_loaded_models": int}


def _bad(message: str) -> CapiError:
    return CapiError(ERR_INVALID_ARGUMENT, f"config_json {message}.")


def parse_config(text: str | None) -> EmbeddedConfig:
    """Parse config_json; raises CapiError(DYNAMO_ERR_INVALID_ARGUMENT) on anything unexpected."""
    try:
        raw = json.loads(text or "{}")
    except ValueError as exc:
        raise _bad(f"is not valid JSON ({exc})") from None
    if not isinstance(raw, dict):
        raise _bad("must be a JSON object")
    unknown = sorted(set(raw) - set(_TYPES))
    if unknown:
        names = ", ".join(f'"{key}"' for key in unknown)
        raise _bad(f"has unknown key{'s' if len(unknown) > 1 else ''} {names} (known keys: {', '.join(sorted(_TYPES))})")
    for key, value in raw.items():
        expected = _TYPES[key]
        if expected is float:
            valid = isinstance(value, (int, float)) and type(value) is not bool and value >= 0
        else:
            valid = isinstance(value, expected) and not (expected is int and (type(value) is bool or value < 0))
        if not valid:
            raise _bad(f'key "{key}" must be {_KIND[_TYPES[key]]}')
    source = {key: f'key "{key}"' for key in raw}
    if "models" in raw:  # multi-model hosting replaces the one served model
        if "model" in raw or raw.get("serve_model"):
            raise _bad('key "models" replaces "model" and "serve_model": give one or the other')
        try:
            raw["models"] = parse_models(raw["models"])
        except ValueError as exc:
            raise _bad(str(exc)) from None
        raw["serve_model"] = False
    if raw.get("max_loaded_models", 1) < 1:
        raise _bad('key "max_loaded_models" must be at least 1')
    for key, field in _FROM_ENV.items():  # what the JSON leaves out, the runtime's environment fills in
        value = env_setting(field)
        if key not in raw and value is not None:
            raw[key], source[key] = value.lower(), ENV_NAMES[field]
    if "migration_limit" not in raw:
        try:
            raw["migration_limit"] = migration_limit_from_env()
        except ValueError as exc:
            raise _bad(f"leaves migration_limit to the environment, but {exc}") from None
    if "router_mode" not in raw and os.environ.get("DYN_ROUTER_MODE"):
        raw["router_mode"], source["router_mode"] = os.environ["DYN_ROUTER_MODE"], "DYN_ROUTER_MODE"
    distributed = raw.get("discovery", "mem") != "mem"
    raw.setdefault("serve_model", not distributed or "model" in raw)
    raw.setdefault("request_plane", "nats" if raw.get("discovery") == "nats" else "tcp" if distributed else "inproc")
    config = EmbeddedConfig(**raw)
    if config.discovery not in DISCOVERY:
        raise _bad(f'{source["discovery"]} must be one of {", ".join(DISCOVERY)}')
    if config.request_plane not in REQUEST_PLANES:
        raise _bad(f'{source["request_plane"]} must be one of {", ".join(REQUEST_PLANES)}')
    if config.request_plane == "inproc" and config.discovery != "mem":
        raise _bad(f'{source["request_plane"]} "inproc" only works with discovery "mem" (one process), not '
                   f'{source["discovery"]} "{config.discovery}"; use "tcp" or "nats"')
    if config.engine not in ENGINES:
        raise _bad(f'key "engine" must be one of {", ".join(ENGINES)}')
    if config.router_mode not in ROUTER_MODES:
        raise _bad(f'{source["router_mode"]} must be one of {", ".join(ROUTER_MODES)}')
    try:
        config.router_settings()
    except ValueError as exc:
        raise _bad(f"has a routing setting the router refuses: {exc}") from None
    if config.mock_endpoint is not None and len(config.mock_endpoint.split(".")) != 3:
        raise _bad('key "mock_endpoint" must be "namespace.component.endpoint"')
    return config


def check_model_path(path: str) -> None:
    """CapiError(DYNAMO_ERR_NOT_FOUND) unless `path` is a HF model folder, a .gguf file or a folder holding one."""
    from pathlib import Path

    from pyimpl.llm.engine.gguf_reader import find_gguf
    if Path(path, "config.json").is_file():
        return
    try:
        if find_gguf(path) is not None:
            return
    except (OSError, ValueError) as exc:
        raise CapiError(ERR_NOT_FOUND, str(exc)) from None
    raise CapiError(ERR_NOT_FOUND, f"no model folder (config.json) or GGUF file at {path!r}")
