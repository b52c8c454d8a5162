"""One C runtime handle on the Python side: a DistributedRuntime, its served model and model manager."""
from __future__ import annotations

import asyncio
import contextlib
import itertools
from pathlib import Path
from typing import TYPE_CHECKING, Any, AsyncIterator, Callable

from pyimpl.capi.config import EmbeddedConfig, check_model_path
from pyimpl.capi.mock_endpoint import mock_stream
from pyimpl.capi.request_keys import check_chat_keys
from pyimpl.capi.status import ERR_NOT_FOUND, CapiError

if TYPE_CHECKING:
    from pyimpl.llm.backend.model_server import ServedModel
    from pyimpl.llm.responses import ResponsesService
    from pyimpl.llm.frontend.model_manager import ModelManager
    from pyimpl.runtime import Client, DistributedRuntime

_WORLDS = itertools.count(1)  # each C runtime with mem discovery is its own world (no shared in-process keys)
ENDPOINT_WAIT_S = 2.0      # how long a generate waits for an endpoint's first instance
MODEL_WAIT_S = 60.0        # how long create waits for the served model's card


class RuntimeSession:
    """Starts and stops what one EmbeddedConfig describes and opens its request streams."""

    def __init__(self, config: EmbeddedConfig, runtime: DistributedRuntime):
        self.config, self.runtime = config, runtime
        self.served: ServedModel | None = None
        self.models: ModelManager | None = None
        self.tasks: list[asyncio.Task] = []
        self.clients: dict[str, Client] = {}
        self._responses: ResponsesService | None = None   # made on first use, with the runtime's conversation store

    @classmethod
    async def start(cls, config: EmbeddedConfig) -> "RuntimeSession":
        """Create the runtime, serve the model and the mock endpoint, wait until the model is routable."""
        from pyimpl.runtime import DistributedRuntime
        runtime = await DistributedRuntime.create(discovery_backend=config.discovery,
                                                  request_plane=config.request_plane,
                                                  nats_server=config.nats_url, file_kv_dir=config.file_kv_dir,
                                                  mem_scope=f"capi-runtime-{next(_WORLDS)}")
        session = cls(config, runtime)
        try:
            await session._serve()
        except BaseException:
            await session.close()
            raise
        return session

    async def _serve(self) -> None:
        config = self.config
        if config.mock_endpoint:
            endpoint = self.runtime.endpoint(config.mock_endpoint)
            self.tasks.append(asyncio.create_task(endpoint.serve_endpoint(mock_stream)))
        if config.serve_model:
            from pyimpl.llm.backend.model_server import serve_model
            from pyimpl.models import demo_model_path
            path = config.model or str(demo_model_path())
            check_model_path(path)
            self.served = await serve_model(self.runtime, path, model_name=config.model_name, engine=config.engine)
        if config.serve_model or config.discovery != "mem" or config.models:
            from pyimpl.llm.frontend.model_manager import ModelManager
            if config.models:  # loaded on demand: Load / Continue / DropAndLoad (model_host)
                from pyimpl.capi.heap import collect_destroyed
                from pyimpl.llm.frontend.hosting_manager import HostingModelManager
                self.models = HostingModelManager(self.runtime, config.models, config.max_loaded_models,
                                                  config.engine, after_unload=collect_destroyed,
                                                  migration_limit=config.migration_limit,
                                                  router=config.router_settings())
            else:
                self.models = ModelManager(self.runtime, migration_limit=config.migration_limit,
                                           router=config.router_settings())
            await self.models.start()
            if self.served is not None:
                await self.models.wait_for_model(self.served.card.name, timeout=MODEL_WAIT_S)

    def chat(self, request: dict) -> AsyncIterator[dict]:
        """OpenAI chat.completion.chunk dicts for an OpenAI chat request."""
        if self.models is None:
            raise CapiError(ERR_NOT_FOUND, "this runtime serves no model (config serve_model=false)")
        if isinstance(request, dict):
            check_chat_keys(request)
        # the C chunk's token ids, and FINISH_CANCELLED on the last chunk of each choice a worker aborted
        return self._default_model(request, lambda r: self.models.chat_completion_stream(
            r, token_ids=True, cancelled_finish=True))

    def completion(self, request: dict) -> AsyncIterator[dict]:
        """OpenAI text_completion chunk dicts for an OpenAI completions request (validation on first iteration)."""
        if self.models is None:
            raise CapiError(ERR_NOT_FOUND, "this runtime serves no model (config serve_model=false)")
        return self._default_model(request, self.models.completion_stream)

    async def responses(self, request: dict) -> AsyncIterator[dict]:
        """The Responses stream events of an OpenAI Responses request, by the HTTP route's path (the library's
        ResponsesService over this runtime's models); errors before generation raise on first iteration, before
        any event, as POST /v1/responses answers them. Conversations stay in this runtime's memory store."""
        if self.models is None:
            raise CapiError(ERR_NOT_FOUND, "this runtime serves no model (config serve_model=false)")
        if self._responses is None:
            from pyimpl.llm.responses import MemoryResponseStore, ResponsesService
            self._responses = ResponsesService(lambda: self.models, MemoryResponseStore())
        run = await self._responses.start(await self._with_model(request))
        async with contextlib.aclosing(run.events()) as events:
            async for event in events:
                yield event

    async def _with_model(self, request: Any) -> Any:
        """request with "model" filled in when it names none and a single model is served; a card already seen
        whose tokenizer is still loading (a worker that just joined a distributed runtime) is waited for, up to
        MODEL_WAIT_S, rather than refusing the request."""
        if isinstance(request, dict) and "model" not in request:
            if not self.models.model_names() and self.models.models:
                await self.models.wait_for_model(timeout=MODEL_WAIT_S)
            names = self.models.model_names()
            if len(names) == 1:
                request = {**request, "model": names[0]}
        return request

    async def _default_model(self, request: Any,
                             open_stream: Callable[[Any], AsyncIterator[dict]]) -> AsyncIterator[dict]:
        """open_stream's chunks for request, its model filled in as _with_model does."""
        request = await self._with_model(request)
        async with contextlib.aclosing(open_stream(request)) as stream:
            async for chunk in stream:
                yield chunk

    async def generate(self, path: str, request: Any) -> AsyncIterator[Any]:
        """The runtime's response stream of endpoint `path` for `request`: the handler's items without
        Annotated wrappers (nothing here reads their annotations); aclose() cancels."""
        client = self.clients.get(path)
        if client is None:
            try:
                endpoint = self.runtime.endpoint(path)
            except ValueError as exc:
                raise CapiError(ERR_NOT_FOUND, f"bad endpoint path {path!r}: {exc}") from None
            client = self.clients[path] = await endpoint.client()
        try:
            await client.wait_for_instances(timeout=ENDPOINT_WAIT_S)
        except (asyncio.TimeoutError, TimeoutError):
            raise CapiError(ERR_NOT_FOUND, f"no instance of endpoint {path!r}") from None
        return await client.generate(request, annotated=False)

    def stats(self) -> dict:
        """Figures for dynamo_runtime_stats_json (engine part None when no model is served here)."""
        engine = None
        if self.served is not None:
            engine = self.served.stats()
        models = self.models.model_names() if self.models is not None else []
        return {"models": models, "engine": engine}

    async def close(self) -> None:
        """Stop serving and shut the runtime down; idempotent."""
        if self._responses is not None:      # connections that Responses requests' mcp tools opened
            await self._responses.mcp.aclose()
        if self.models is not None:
            await self.models.stop()
        if self.served is not None:
            await self.served.stop()
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        self.tasks.clear()
        await self.runtime.shutdown()
