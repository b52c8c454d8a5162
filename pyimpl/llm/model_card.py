"""Model deployment cards: what a worker publishes in discovery so frontends can serve its model."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

CARD_PREFIX = "models/"


@dataclass
class ModelCard:
    """The card at `models/{name}/{instance_id:x}` (docs/INTERFACES.md)."""

    name: str
    model_path: str
    endpoint: str = "dynamo.backend.generate"
    model_type: str = "chat"                 # chat | completions | embedding
    context_length: int = 4096
    kv_block_size: int = 16
    tool_call_parser: str | None = None
    reasoning_parser: str | None = None
    eos_token_ids: list[int] = field(default_factory=list)

    def to_dict(self) -> dict:
        """The JSON-able card."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "ModelCard":
        """Build from a card dict, ignoring keys newer writers may add."""
        known = cls.__dataclass_fields__
        return cls(**{k: v for k, v in data.items() if k in known})


def card_key(model_name: str, instance_id: int) -> str:
    """Discovery key of one worker's card for `model_name`."""
    return f"{CARD_PREFIX}{model_name}/{instance_id:x}"


def read_model_config(model_path: str | Path) -> dict:
    """Context length, EOS ids and model kind read from a model folder's config files (or a GGUF's converted ones)."""
    from pyimpl.llm.engine.gguf_cache import resolve_model_dir

    path = Path(resolve_model_dir(model_path))
    config = _load_json(path / "config.json")
    generation = _load_json(path / "generation_config.json")
    eos = generation.get("eos_token_id", config.get("eos_token_id"))
    eos_ids = [eos] if isinstance(eos, int) else list(eos or [])
    architectures = config.get("architectures") or []
    is_embedding = (path / "modules.json").exists() or any(a in ("BertModel", "XLMRobertaModel") for a in architectures)
    return {"context_length": int(config.get("max_position_embeddings", 4096)),
            "eos_token_ids": eos_ids, "vocab_size": int(config.get("vocab_size", 32000)),
            "model_type": "embedding" if is_embedding else "chat"}


def _load_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
