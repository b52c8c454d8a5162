"""Loads a hosted model into this process (multi-model hosting): serve it on the runtime at an endpoint of
its own and wait until the frontend half has its card; stop() withdraws it and waits until it is gone."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Protocol

MODEL_WAIT_S = 60.0  # how long a load waits for the served model's card


class CardWatcher(Protocol):
    """What the loader needs from the model registry."""

    async def wait_for_model(self, name: str | None = None, timeout: float | None = None) -> str: ...
    async def wait_for_model_gone(self, name: str, timeout: float | None = None) -> None: ...


class LocalModel:
    """A model served here: stop() withdraws it and frees its engine."""

    def __init__(self, served: Any, registry: CardWatcher):
        self.served, self.registry = served, registry

    async def stop(self) -> None:
        await self.served.stop()
        await self.registry.wait_for_model_gone(self.served.card.name, timeout=MODEL_WAIT_S)


class LocalModelLoader:
    """ModelHost's `load` for models served in this process by the torch (or mock) engine."""

    def __init__(self, runtime: Any, registry: CardWatcher, engine: str = "torch"):
        self.runtime, self.registry, self.engine = runtime, registry, engine

    async def __call__(self, model: Any) -> LocalModel:
        from pyimpl.llm.backend.model_server import serve_model
        if not Path(model.path).exists():
            raise FileNotFoundError(f"no model folder or GGUF file at {model.path!r}")
        endpoint = f"dynamo.{re.sub(r'[^A-Za-z0-9_-]', '_', model.name)}.generate"  # one endpoint per model
        served = await serve_model(self.runtime, model.path, model_name=model.name, endpoint=endpoint,
                                   engine=self.engine)
        try:
            await self.registry.wait_for_model(model.name, timeout=MODEL_WAIT_S)
        except BaseException:
            await served.stop()
            raise
        return LocalModel(served, self.registry)
