"""@dynamo_worker(): run `async def worker(runtime)` with a runtime built from the environment;
SIGTERM/SIGINT trigger a graceful shutdown (deregister, drain, close)."""
from __future__ import annotations

import asyncio
import functools
import signal
from typing import Any, Awaitable, Callable

from .runtime import DistributedRuntime


def dynamo_worker(static: bool = False, **runtime_kwargs: Any):
    """Decorate `async def worker(runtime, *args)`; the result is `async def worker(*args)`."""

    def decorate(fn: Callable[..., Awaitable[Any]]):
        @functools.wraps(fn)
        async def run(*args: Any, **kwargs: Any) -> Any:
            runtime = await DistributedRuntime.create(**runtime_kwargs)
            loop = asyncio.get_running_loop()

            def on_signal() -> None:
                loop.create_task(runtime.shutdown())

            installed = []
            for sig in (signal.SIGTERM, signal.SIGINT):
                try:
                    loop.add_signal_handler(sig, on_signal)
                    installed.append(sig)
                except (NotImplementedError, RuntimeError):   # not the main thread
                    pass
            try:
                return await fn(runtime, *args, **kwargs)
            finally:
                for sig in installed:
                    loop.remove_signal_handler(sig)
                await runtime.shutdown()

        return run

    return decorate
