"""Fixtures for the text-processing tests: the shared tiny model folder (byte-level BPE, ChatML with tools)."""
from __future__ import annotations

from pathlib import Path

import pytest

from pyimpl.llm.text.preprocessor import Preprocessor
from pyimpl.models import tiny_model_path


@pytest.fixture(scope="session")
def model_dir() -> Path:
    return tiny_model_path()


@pytest.fixture(scope="session")
def pre(model_dir: Path) -> Preprocessor:
    return Preprocessor.from_model_dir(model_dir)
