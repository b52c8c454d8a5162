"""Pipeline stage 2 of 3: the processor. Serves `inference.processor.process`: an OpenAI chat request in,
text deltas out. Applies the chat template, tokenizes, calls the engine, detokenizes incrementally.

    python processor.py [--model DIR]

Restart it at will: the frontend and the engine find it again through discovery.
"""
import argparse
import asyncio

from pyimpl.llm.text.preprocessor import Preprocessor
from pyimpl.runtime import DistributedRuntime, dynamo_worker


class Processor:
    """Text <-> tokens around the engine."""

    def __init__(self, preprocessor: Preprocessor, engine_client):
        self.pre, self.engine = preprocessor, engine_client

    async def process(self, request: dict):
        token_ids = self.pre.chat_token_ids(request["messages"])
        engine_request = {"token_ids": token_ids,
                          "sampling_options": {"temperature": request.get("temperature", 0.0)},
                          "stop_conditions": {"max_tokens": request.get("max_tokens", 32),
                                              "ignore_eos": request.get("ignore_eos", False)}}
        detokenizer = self.pre.detokenizer(prompt_token_ids=token_ids)
        stream = await self.engine.generate(engine_request)
        async for chunk in stream:
            data = chunk.data()  # the runtime wraps each item in an Annotated
            text = detokenizer.add(data["token_ids"])
            if data.get("finish_reason"):
                yield {"content": text + detokenizer.flush(), "finish_reason": data["finish_reason"],
                       "completion_tokens_delta": len(data["token_ids"])}
                return
            yield {"content": text, "completion_tokens_delta": len(data["token_ids"])}


@dynamo_worker(static=False)
async def worker(runtime: DistributedRuntime, model_path: str) -> None:
    engine_client = await runtime.namespace("inference").component("engine").endpoint("generate").client()
    await engine_client.wait_for_instances()
    component = runtime.namespace("inference").component("processor")
    await component.create_service()
    processor = Processor(Preprocessor.from_model_dir(model_path), engine_client)
    print("processor ready", flush=True)
    await component.endpoint("process").serve_endpoint(processor.process)


if __name__ == "__main__":
    from engine import default_model
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None)
    args = parser.parse_args()
    asyncio.run(worker(args.model or default_model()))
