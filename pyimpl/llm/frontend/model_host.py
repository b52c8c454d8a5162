"""Embedded multi-model hosting with BodhiApp's load strategies: several models are configured, at most
`max_loaded` are loaded; a request for a model that is not loaded loads it (Load), a request for a loaded
one goes on (Continue), and when the limit is reached the least recently used model is unloaded first
(DropAndLoad), after its in-flight requests have finished. A failed load answers the requests that waited
for it with a clear error; a later request tries again. Listeners hear every state change.

How a model is loaded and unloaded is the caller's (`load`: e.g. serve it on the runtime and wait for its
card; the returned object's `stop()` withdraws it), so the same host serves the C ABI and the HTTP frontend."""
from __future__ import annotations

import asyncio
import enum
import logging
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Awaitable, Callable, Protocol

from pyimpl.llm.errors import EngineError, ModelNotFoundError
from pyimpl.llm.frontend.aliases import ModelAlias, read_config_file

log = logging.getLogger(__name__)


class ModelState(str, enum.Enum):
    """Where a hosted model is (the values are what listeners and /v1/models show)."""

    UNLOADED = "unloaded"
    LOADING = "loading"
    LOADED = "loaded"
    UNLOADING = "unloading"
    FAILED = "failed"


@dataclass(frozen=True)
class HostedModel:
    """One configured model: `{"name", "path", "aliases": [...], "params": {...}}` (params: request defaults)."""

    name: str
    path: str
    aliases: tuple[str, ...] = ()
    params: dict = field(default_factory=dict, hash=False)

    def model_aliases(self) -> dict[str, ModelAlias]:
        """The ModelManager aliases: each alias (and the name itself, when it has defaults) with its params."""
        names = self.aliases + ((self.name,) if self.params else ())
        return {alias: ModelAlias(alias, self.name, dict(self.params)) for alias in names}


class Loaded(Protocol):
    """What `load` returns: something that withdraws and frees the model."""

    async def stop(self) -> None: ...


StateListener = Callable[[str, ModelState, "str | None"], None]  # (model name, new state, error message)


@dataclass
class _Slot:
    model: HostedModel
    state: ModelState = ModelState.UNLOADED
    loaded: Loaded | None = None
    inflight: int = 0
    last_used: float = 0.0
    attempt: int = 0          # loads started; a waiter fails only with the load it waited for
    error: str | None = None  # why the last load failed


class ModelHost:
    """The load strategies over `models`; `use(name)` holds a model loaded for one request."""

    def __init__(self, models: list[HostedModel], max_loaded: int,
                 load: Callable[[HostedModel], Awaitable[Loaded]], after_unload: Callable[[], None] | None = None):
        if max_loaded < 1:
            raise ValueError(f"max_loaded_models must be at least 1, got {max_loaded}")
        self.max_loaded = max_loaded
        self._load, self._after_unload = load, after_unload
        self._slots: dict[str, _Slot] = {}
        self._names: dict[str, str] = {}  # name or alias -> name
        for model in models:
            for name in (model.name, *model.aliases):
                if name in self._names:
                    raise ValueError(f"model name or alias {name!r} is configured twice")
                self._names[name] = model.name
            self._slots[model.name] = _Slot(model)
        self._lock = asyncio.Lock()       # one load or unload sequence at a time
        self._changed = asyncio.Event()   # replaced after every change: waiters wake and look again
        self.listeners: list[StateListener] = []

    def resolve(self, name: str) -> HostedModel | None:
        """The model a name or alias means, None when none is configured by that name."""
        canonical = self._names.get(name)
        return self._slots[canonical].model if canonical is not None else None

    def aliases(self) -> dict[str, ModelAlias]:
        """Every model's aliases, for ModelManager(aliases=...)."""
        return {alias: entry for slot in self._slots.values() for alias, entry in slot.model.model_aliases().items()}

    def states(self) -> list[dict]:
        """Each configured model with its state (loaded and loadable), in configuration order."""
        return [{"name": s.model.name, "aliases": list(s.model.aliases), "state": s.state.value,
                 "error": s.error if s.state is ModelState.FAILED else None} for s in self._slots.values()]

    @asynccontextmanager
    async def use(self, name: str) -> AsyncIterator[HostedModel]:
        """Hold `name` (a name or alias) loaded for the block: Load, Continue or DropAndLoad first."""
        model = await self.acquire(name)
        try:
            yield model
        finally:
            self.release(model)

    async def acquire(self, name: str) -> HostedModel:
        """Wait until the model is loaded and count one request in; release() counts it out."""
        model = self.resolve(name)
        if model is None:
            raise ModelNotFoundError(f"The model '{name}' does not exist")
        slot = self._slots[model.name]
        waited_for: int | None = None
        while True:
            if slot.state is ModelState.LOADED:  # Continue
                slot.inflight += 1
                slot.last_used = time.monotonic()
                return model
            if slot.state is ModelState.FAILED and waited_for == slot.attempt:
                raise EngineError(f"the model '{model.name}' failed to load: {slot.error}")
            if slot.state in (ModelState.LOADING, ModelState.UNLOADING):
                waited_for = slot.attempt if slot.state is ModelState.LOADING else None
                await self._wait()
                continue
            async with self._lock:  # UNLOADED or FAILED (an earlier request's load): Load / DropAndLoad
                if slot.state in (ModelState.UNLOADED, ModelState.FAILED):
                    await self._make_room(slot)
                    await self._load_slot(slot)
                    waited_for = slot.attempt

    def release(self, model: HostedModel) -> None:
        """One request of `model` is done."""
        slot = self._slots[model.name]
        slot.inflight -= 1
        slot.last_used = time.monotonic()
        self._notify()

    async def close(self) -> None:
        """Unload every model (their requests are ended by the stop)."""
        async with self._lock:
            for slot in self._slots.values():
                if slot.loaded is not None:
                    await self._unload(slot, wait=False)

    # ---- transitions (under self._lock) ----
    async def _make_room(self, keep: _Slot) -> None:
        while sum(s.state is ModelState.LOADED for s in self._slots.values()) >= self.max_loaded:
            victim = min((s for s in self._slots.values() if s.state is ModelState.LOADED and s is not keep),
                         key=lambda s: s.last_used)
            await self._unload(victim, wait=True)

    async def _unload(self, slot: _Slot, wait: bool) -> None:
        self._set(slot, ModelState.UNLOADING)  # its new requests wait; those in flight finish first
        while wait and slot.inflight:
            await self._wait()
        loaded, slot.loaded = slot.loaded, None
        try:
            if loaded is not None:
                await loaded.stop()
        finally:
            self._set(slot, ModelState.UNLOADED)
            if self._after_unload is not None:
                self._after_unload()

    async def _load_slot(self, slot: _Slot) -> None:
        slot.attempt += 1
        self._set(slot, ModelState.LOADING)
        try:
            slot.loaded = await self._load(slot.model)
        except Exception as exc:  # the requests that waited get this error; a later request tries again
            slot.error = str(exc) or type(exc).__name__
            log.warning("model %s failed to load: %s", slot.model.name, slot.error)
            self._set(slot, ModelState.FAILED, slot.error)
            return
        slot.error = None
        self._set(slot, ModelState.LOADED)

    # ---- change notification ----
    def _set(self, slot: _Slot, state: ModelState, message: str | None = None) -> None:
        slot.state = state
        for listener in list(self.listeners):
            try:
                listener(slot.model.name, state, message)
            except Exception:  # a listener's failure must not wedge the host
                log.exception("model state listener failed")
        self._notify()

    def _notify(self) -> None:
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    async def _wait(self) -> None:
        await self._changed.wait()


def parse_models(raw: Any) -> list[HostedModel]:
    """A "models" list ([{"name", "path", "aliases": [...], "params": {...}}], config_json or --models FILE) as
    HostedModels; ValueError naming the fault."""
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


def load_models_file(path: str) -> tuple[list[HostedModel], int]:
    """--models FILE (JSON, or YAML by its suffix): {"models": [...], "max_loaded_models": N (default 1)}."""
    data = read_config_file(path)
    if not isinstance(data, dict) or set(data) - {"models", "max_loaded_models"}:
        raise ValueError(f'{path}: expected an object with "models" and optionally "max_loaded_models"')
    max_loaded = data.get("max_loaded_models", 1)
    if type(max_loaded) is not int or max_loaded < 1:
        raise ValueError(f'{path}: "max_loaded_models" must be a whole number >= 1')
    return parse_models(data.get("models")), max_loaded
