"""Hello world in one process on the embedded default (mem discovery, inproc plane):
a server streams words back and a client prints them as they arrive."""
import asyncio

from pyimpl.runtime import DistributedRuntime, dynamo_worker


async def generate(request: str, context):
    """Stream one greeting per comma-separated word."""
    for word in request.split(","):
        yield f"Hello {word}!"


@dynamo_worker(static=False)
async def worker(runtime: DistributedRuntime) -> None:
    endpoint = runtime.namespace("hello_world").component("backend").endpoint("generate")
    await endpoint.component.create_service()
    server = asyncio.create_task(endpoint.serve_endpoint(generate))

    client = await endpoint.client()
    await client.wait_for_instances(timeout=5)
    async for chunk in await client.generate("world,sun,moon,star"):
        print(chunk.data(), flush=True)

    await runtime.shutdown()
    await server


if __name__ == "__main__":
    asyncio.run(worker())
