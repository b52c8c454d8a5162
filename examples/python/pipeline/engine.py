"""Pipeline stage 3 of 3: the engine. Serves `inference.engine.generate`: token ids in, new token ids out.

    python engine.py [--model-path DIR]

Runs the real continuous-batching torch engine (pyimpl.llm.engine). Uses the runtime's
environment: DYN_DISCOVERY_BACKEND=nats DYN_REQUEST_PLANE=nats NATS_SERVER=nats://127.0.0.1:4222.
"""
import argparse
import asyncio

from pyimpl.llm.engine import AsyncEngine
from pyimpl.llm.backend.model_server import GenerateHandler
from pyimpl.runtime import DistributedRuntime, dynamo_worker


def default_model() -> str:
    from pyimpl.models import demo_model_path, tiny_model_path
    try:
        return str(demo_model_path())
    except FileNotFoundError:
        return str(tiny_model_path())


@dynamo_worker(static=False)
async def worker(runtime: DistributedRuntime, model_path: str) -> None:
    engine = AsyncEngine.from_pretrained(model_path)
    component = runtime.namespace("inference").component("engine")
    await component.create_service()
    endpoint = component.endpoint("generate")
    print(f"engine ready: {model_path}", flush=True)
    try:
        # Request: {"token_ids", "sampling_options", "stop_conditions"}; yields {"token_ids", "finish_reason"}.
        await endpoint.serve_endpoint(GenerateHandler(engine))
    finally:
        await engine.shutdown()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-path", default=None)
    args = parser.parse_args()
    asyncio.run(worker(args.model_path or default_model()))
