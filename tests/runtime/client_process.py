"""A client process for tests: opens the endless stream of namespace argv[1] with context id
argv[2] (DYN_* environment), reads one chunk, prints READ, then never reads again."""
import asyncio
import sys

from pyimpl.runtime import Context, DistributedRuntime


async def main(namespace: str, context_id: str) -> None:
    runtime = await DistributedRuntime.create()
    client = await runtime.endpoint(f"{namespace}.worker.endless").client()
    await client.wait_for_instances(10)
    stream = await client.generate({}, context=Context(context_id))
    await stream.__anext__()
    print("READ", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
