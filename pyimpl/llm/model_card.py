"""Model deployment cards: what a worker publishes in discovery so frontends can serve its model.

A worker fills one from its engine, whose facts come from model_facts (the one reader of a model folder)."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

from pyimpl.llm.model_facts import DEFAULT_CONTEXT_LENGTH

CARD_PREFIX = "models/"


@dataclass
class ModelCard:
    """The card at `models/{name}/{instance_id:x}` (docs/INTERFACES.md)."""

    name: str
    model_path: str
    endpoint: str = "dynamo.backend.generate"
    model_type: str = "chat"                 # chat | completions | embedding
    context_length: int = DEFAULT_CONTEXT_LENGTH  # what the worker's engine serves (model_facts: the rule)
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


def card_instance_id(key: str) -> int:
    """The id of the worker instance that published the card at `key` (card_key's inverse)."""
    return int(key.rsplit("/", 1)[1], 16)
