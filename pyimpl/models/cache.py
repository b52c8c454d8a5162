"""Build-once cache of generated models for tests, examples and benchmarks.

Folders are keyed by arch, preset, seed and a fingerprint of the generator, built in a
temporary folder and renamed into place, so concurrent processes never see a partial model.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path

from .make_tiny import make_tiny_model
from .tokenizer import DATA_DIR

_GENERATOR_FILES = ("make_tiny.py", "tokenizer.py", "data/tokenizer.json", "data/chat_template.jinja")


def cache_root() -> Path:
    """$PYIMPL_MODEL_CACHE, else the repository's build/models, else a per-user temp folder."""
    if env := os.environ.get("PYIMPL_MODEL_CACHE"):
        return Path(env)
    repo_build = Path(__file__).resolve().parents[2] / "build"
    if (repo_build.parent / "pyproject.toml").exists() and os.access(repo_build.parent, os.W_OK):
        return repo_build / "models"
    return Path(tempfile.gettempdir()) / f"pyimpl-models-{os.getuid()}"


def generator_fingerprint() -> str:
    """Short hash of the code and data that determine a generated model's bytes."""
    h = hashlib.sha256()
    for rel in _GENERATOR_FILES:
        h.update((DATA_DIR.parent / rel).read_bytes())
    return h.hexdigest()[:12]


def tiny_model_path(arch: str = "llama", preset: str = "tiny", seed: int = 0) -> Path:
    """Path of a generated model folder, building it on first use (safe across processes)."""
    root = cache_root()
    final = root / f"{arch}-{preset}-seed{seed}-{generator_fingerprint()}"
    if final.is_dir():
        return final
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=root))
    try:
        make_tiny_model(tmp, arch=arch, preset=preset, seed=seed)
        tmp.chmod(0o755)
        os.rename(tmp, final)
    except OSError:
        if not final.is_dir():  # lost nothing to a concurrent builder: a real error
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final
