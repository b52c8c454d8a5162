"""Routing tests reuse the serving fixtures (tiny model, frontend and worker processes)."""
from tests.serving.conftest import tiny_model  # noqa: F401
