"""Multi-model hosting for a C runtime (config "models" + "max_loaded_models"): a ModelHost whose loads
serve a model on the runtime (its own endpoint) and wait for its card, whose unloads withdraw it and hand
its memory back; chat and completion streams hold their model loaded while they run."""
from __future__ import annotations

import re
from typing import Any, AsyncIterator, Callable

from pyimpl.capi.heap import collect_destroyed
from pyimpl.llm.frontend.model_host import HostedModel, ModelHost

MODEL_WAIT_S = 60.0  # how long a load waits for the served model's card


class _Served:
    """A loaded model: stop() withdraws it and waits until the model manager has seen it go."""

    def __init__(self, served: Any, models: Any):
        self.served, self.models = served, models

    async def stop(self) -> None:
        await self.served.stop()
        await self.models.wait_for_model_gone(self.served.card.name, timeout=MODEL_WAIT_S)


class HostedModels:
    """The configured models of one runtime, loaded on demand (see pyimpl.llm.frontend.model_host)."""

    def __init__(self, runtime: Any, models: Any, hosted: list[HostedModel], max_loaded: int, engine: str):
        self.runtime, self.models, self.engine = runtime, models, engine
        self.host = ModelHost(hosted, max_loaded, self._load, after_unload=collect_destroyed)

    async def _load(self, model: HostedModel) -> _Served:
        from pyimpl.capi.config import check_model_path
        from pyimpl.llm.backend.model_server import serve_model
        check_model_path(model.path)
        endpoint = f"dynamo.{re.sub(r'[^A-Za-z0-9_-]', '_', model.name)}.generate"  # one endpoint per model
        served = await serve_model(self.runtime, model.path, model_name=model.name, endpoint=endpoint,
                                   engine=self.engine)
        try:
            await self.models.wait_for_model(model.name, timeout=MODEL_WAIT_S)
        except BaseException:
            await served.stop()
            raise
        return _Served(served, self.models)

    def stream(self, request: Any, open_stream: Callable[[Any], AsyncIterator[dict]]) -> AsyncIterator[dict]:
        """open_stream(request)'s chunks while the request's model is held loaded (Load, Continue or
        DropAndLoad first); a request naming no configured model goes through as it is (validation reports it)."""
        name = request.get("model") if isinstance(request, dict) else None
        if not isinstance(name, str) or self.host.resolve(name) is None:
            return open_stream(request)
        return self._held(name, request, open_stream)

    async def _held(self, name: str, request: Any, open_stream: Callable[[Any], AsyncIterator[dict]]):
        async with self.host.use(name):
            source = open_stream(request)
            try:
                async for chunk in source:
                    yield chunk
            finally:
                await source.aclose()

    def listing(self) -> list[dict]:
        """The configured models and their states (loaded and loadable)."""
        return self.host.states()

    async def close(self) -> None:
        await self.host.close()


def parse_models(raw: Any) -> list[HostedModel]:
    """config_json's "models": [{"name", "path", "aliases": [...], "params": {...}}]; ValueError naming the fault."""
    if not isinstance(raw, list) or not raw:
        raise ValueError('key "models" must be a non-empty array of {"name", "path"} objects')
    models = []
    for i, entry in enumerate(raw):
        where = f'"models"[{i}]'
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str) or not entry["name"] \
                or not isinstance(entry.get("path"), str):
            raise ValueError(f'{where} must be an object with a "name" and a "path" string')
        unknown = sorted(set(entry) - {"name", "path", "aliases", "params"})
        if unknown:
            raise ValueError(f'{where} has unknown keys {unknown} (known: name, path, aliases, params)')
        aliases = entry.get("aliases", [])
        if not isinstance(aliases, list) or not all(isinstance(a, str) and a for a in aliases):
            raise ValueError(f'{where}["aliases"] must be an array of names')
        params = entry.get("params", {})
        if not isinstance(params, dict):
            raise ValueError(f'{where}["params"] must be an object of request defaults')
        models.append(HostedModel(entry["name"], entry["path"], tuple(aliases), params))
    names = [name for model in models for name in (model.name, *model.aliases)]
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise ValueError(f'"models" names {twice} more than once (names and aliases must be unique)')
    return models
