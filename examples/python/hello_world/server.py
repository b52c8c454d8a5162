"""Hello world server as its own process. Run with the client over NATS:

    .venv/bin/nats-server -js &
    DYN_DISCOVERY_BACKEND=nats DYN_REQUEST_PLANE=nats python examples/python/hello_world/server.py &
    DYN_DISCOVERY_BACKEND=nats DYN_REQUEST_PLANE=nats python examples/python/hello_world/client.py

(NATS_SERVER picks the server, default nats://127.0.0.1:4222; Ctrl-C/SIGTERM stops gracefully.)"""
import asyncio

from pyimpl.runtime import DistributedRuntime, dynamo_worker


async def generate(request: str, context):
    """Stream one greeting per comma-separated word, slowly enough to watch."""
    for word in request.split(","):
        if context.is_stopped():
            return
        yield f"Hello {word}!"
        await asyncio.sleep(0.1)


@dynamo_worker(static=False)
async def worker(runtime: DistributedRuntime) -> None:
    endpoint = runtime.endpoint("hello_world.backend.generate")
    print(f"serving hello_world.backend.generate as instance {runtime.instance_id:x}", flush=True)
    await endpoint.serve_endpoint(generate)


if __name__ == "__main__":
    asyncio.run(worker())
