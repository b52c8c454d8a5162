"""Hello world client as its own process: finds the server through discovery and prints the
streamed words (see server.py for the environment to run both over NATS)."""
import asyncio
import sys

from pyimpl.runtime import DistributedRuntime, dynamo_worker


@dynamo_worker(static=False)
async def worker(runtime: DistributedRuntime, words: str) -> None:
    client = await runtime.endpoint("hello_world.backend.generate").client()
    await client.wait_for_instances(timeout=10)
    async for chunk in await client.generate(words):
        print(chunk.data(), flush=True)


if __name__ == "__main__":
    asyncio.run(worker(sys.argv[1] if len(sys.argv) > 1 else "world,sun,moon,star"))
