"""A ModelManager over hosted models (pyimpl.llm.frontend.model_host): each request holds its model loaded
(Load, Continue or DropAndLoad first) while it runs, and /v1/models lists the loadable models too. Shared by
the C ABI's runtimes with "models" and the single-process HTTP frontend (--models FILE)."""
from __future__ import annotations

from typing import Any, AsyncIterator, Callable

from pyimpl.llm.backend.local_models import LocalModelLoader
from pyimpl.llm.frontend.model_host import HostedModel, ModelHost
from pyimpl.llm.frontend.model_manager import ModelManager


class HostingModelManager(ModelManager):
    """ModelManager whose models are loaded on demand, at most `max_loaded` at once."""

    def __init__(self, rt: Any, models: list[HostedModel], max_loaded: int, engine: str = "torch",
                 after_unload: Callable[[], None] | None = None, **manager_args: Any):
        self.host = ModelHost(models, max_loaded, LocalModelLoader(rt, self, engine), after_unload)
        aliases = {**self.host.aliases(), **(manager_args.pop("aliases", None) or {})}
        super().__init__(rt, aliases, **manager_args)

    def chat_completion_stream(self, request: dict, **host_fields: bool) -> AsyncIterator[dict]:
        return self._held(request, lambda r: super(HostingModelManager, self).chat_completion_stream(r, **host_fields))

    def completion_stream(self, request: dict) -> AsyncIterator[dict]:
        return self._held(request, super().completion_stream)

    async def embeddings(self, request: Any) -> dict:
        name = request.get("model") if isinstance(request, dict) else None
        if not isinstance(name, str) or self.host.resolve(name) is None:
            return await super().embeddings(request)
        async with self.host.use(name):
            return await super().embeddings(request)

    def list_models(self) -> dict:
        """/v1/models: the served models, then each configured model not loaded now, with its state."""
        listing = super().list_models()
        states = {state["name"]: state["state"] for state in self.host.states()}
        data, seen = [], set()
        for entry in listing["data"]:  # served names, then their aliases (a name with params is its own alias)
            if entry["id"] in seen:
                continue
            seen.add(entry["id"])
            model = self.host.resolve(entry["id"])
            data.append({**entry, "status": states[model.name]} if model is not None else entry)
        data += [{"id": name, "object": "model", "created": self.created, "owned_by": "pyimpl", "status": state}
                 for name, state in states.items() if name not in seen]
        return {**listing, "data": data}

    async def stop(self) -> None:
        await self.host.close()
        await super().stop()

    def _held(self, request: Any, open_stream: Callable[[Any], AsyncIterator[dict]]) -> AsyncIterator[dict]:
        """open_stream(request)'s chunks while its model is held loaded; a request naming no configured model
        goes through as it is (validation reports it)."""
        name = request.get("model") if isinstance(request, dict) else None
        if not isinstance(name, str) or self.host.resolve(name) is None:
            return open_stream(request)
        return self._held_stream(name, request, open_stream)

    async def _held_stream(self, name: str, request: Any, open_stream: Callable[[Any], AsyncIterator[dict]]):
        async with self.host.use(name):
            source = open_stream(request)
            try:
                async for chunk in source:
                    yield chunk
            finally:
                await source.aclose()
