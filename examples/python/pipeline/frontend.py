"""Pipeline stage 1 of 3: the frontend. HTTP `POST /v1/chat/completions` -> `inference.processor.process`,
collected into one OpenAI chat.completion. Creates a client only; serves no runtime endpoint.

    python frontend.py [--port 8080]
    curl -X POST http://127.0.0.1:8080/v1/chat/completions -H 'Content-Type: application/json' \\
         -d '{"model": "demo", "messages": [{"role": "user", "content": "Hello!"}], "max_tokens": 25}'
"""
import argparse
import asyncio
import time
import uuid

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from pyimpl.runtime import DistributedRuntime, dynamo_worker


def make_app(processor_client) -> Starlette:
    async def chat_completions(request: Request) -> JSONResponse:
        body = await request.json()
        stream = await processor_client.generate(body)
        parts, tokens, finish = [], 0, None
        async for chunk in stream:
            data = chunk.data()
            parts.append(data.get("content", ""))
            tokens += data.get("completion_tokens_delta", 0)
            finish = data.get("finish_reason") or finish
        return JSONResponse({
            "id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion", "created": int(time.time()),
            "model": body.get("model", ""),
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "".join(parts)},
                         "finish_reason": finish}],
            "usage": {"completion_tokens": tokens}})

    async def health(request: Request) -> JSONResponse:
        return JSONResponse({"processors": len(processor_client.instance_ids())})

    return Starlette(routes=[Route("/v1/chat/completions", chat_completions, methods=["POST"]),
                             Route("/health", health)])


@dynamo_worker(static=False)
async def worker(runtime: DistributedRuntime, port: int) -> None:
    client = await runtime.namespace("inference").component("processor").endpoint("process").client()
    server = uvicorn.Server(uvicorn.Config(make_app(client), host="127.0.0.1", port=port, log_level="warning"))
    serving = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.05)
    print(f"frontend ready on http://127.0.0.1:{port}", flush=True)
    await serving


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=8080)
    args = parser.parse_args()
    asyncio.run(worker(args.port))
