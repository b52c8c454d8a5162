"""A worker process for tests: serves handlers.StreamHandlers under namespace argv[1], configured
by DYN_* environment variables; prints READY <instance_id hex> once registered."""
import asyncio
import sys

from pyimpl.runtime import dynamo_worker
from tests.runtime.handlers import register_all


@dynamo_worker(static=False)
async def worker(runtime, namespace: str) -> None:
    await register_all(runtime, namespace)
    print(f"READY {runtime.instance_id:x}", flush=True)
    await runtime.wait_for_shutdown()


if __name__ == "__main__":
    asyncio.run(worker(sys.argv[1]))
