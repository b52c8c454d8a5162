"""The mock engine's import path (model_server, tests): the implementation is the mocker package."""
from pyimpl.llm.backend.mocker import MockEngine, MockSamplingParams, PerfModel, make_params

__all__ = ["MockEngine", "MockSamplingParams", "PerfModel", "make_params"]
