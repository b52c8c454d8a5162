"""The embedded loop's helper threads (model loads, tokenizers, large prompts go to asyncio.to_thread): ours to end
when the host has destroyed every runtime, so its thread count comes back to what it was (ctest test_destroy_leak)."""
from __future__ import annotations

import asyncio
import logging
import threading
from concurrent.futures import ThreadPoolExecutor

log = logging.getLogger(__name__)
RELEASE_TIMEOUT_S = 5.0


def _new_pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(thread_name_prefix="dynamo-llm-capi-worker")


class LoopThreads:
    """The loop's default executor, replaced by a fresh (threadless until used) one on release."""

    def __init__(self) -> None:
        self.pool = _new_pool()

    def install(self, loop: asyncio.AbstractEventLoop) -> None:
        loop.set_default_executor(self.pool)

    async def release(self) -> None:
        """End the current pool's threads once their jobs finish (waited for up to RELEASE_TIMEOUT_S)."""
        loop = asyncio.get_running_loop()
        old, self.pool = self.pool, _new_pool()
        loop.set_default_executor(self.pool)
        done = loop.create_future()

        def shut_down() -> None:  # a plain thread: waiting in the pool itself would keep one of its threads
            old.shutdown(wait=True)
            loop.call_soon_threadsafe(lambda: done.done() or done.set_result(None))

        threading.Thread(target=shut_down, name="dynamo-llm-capi-reaper", daemon=True).start()
        try:
            await asyncio.wait_for(asyncio.shield(done), RELEASE_TIMEOUT_S)
        except asyncio.TimeoutError:
            log.warning("a helper thread's job outlived every runtime by %.0f s; its thread ends when it does",
                        RELEASE_TIMEOUT_S)
