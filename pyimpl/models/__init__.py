"""Models made here for tests and demos: tiny random HF folders and a small trained demo model."""
from __future__ import annotations

from pathlib import Path

from .cache import tiny_model_path
from .make_tiny import make_tiny_model

DEMO_DIR = Path(__file__).parent / "demo"


def demo_model_path() -> Path:
    """Folder of the committed demo model (trained by ``python -m pyimpl.models.train_demo``)."""
    if not (DEMO_DIR / "model.safetensors").exists():
        raise FileNotFoundError(f"demo model missing at {DEMO_DIR}; run python -m pyimpl.models.train_demo")
    return DEMO_DIR


__all__ = ["make_tiny_model", "tiny_model_path", "demo_model_path", "DEMO_DIR"]
