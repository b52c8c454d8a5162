"""The worker wire format's parameter sections, read once for every engine (torch-free, so the mock can use it).

docs/INTERFACES.md describes the format; engines build their own parameter objects from `wire_fields`.
"""
from __future__ import annotations

from typing import Any

from pyimpl.llm.errors import EngineRequestError

# The fields each section may carry. No `n` (the frontend opens one worker stream per choice) and no logits
# processors (built in the worker, never sent).
WIRE_FIELDS: dict[str, frozenset[str]] = {
    "sampling_options": frozenset({"temperature", "top_p", "top_k", "min_p", "seed", "repetition_penalty",
                                   "presence_penalty", "frequency_penalty", "logit_bias"}),
    "stop_conditions": frozenset({"max_tokens", "min_tokens", "stop_token_ids", "ignore_eos"}),
    "output_options": frozenset({"logprobs", "prompt_logprobs"}),
}


def wire_fields(wire: dict) -> dict[str, Any]:
    """The parameter fields of a wire request, flattened (None values left out: the default applies);
    an unknown field or a section that is not an object raises EngineRequestError naming it."""
    fields: dict[str, Any] = {}
    for section, known in WIRE_FIELDS.items():
        options = wire.get(section)
        if options is None:
            continue
        if not isinstance(options, dict):
            raise EngineRequestError(f"{section} must be an object, got {type(options).__name__}", section)
        for name, value in options.items():
            if name not in known:
                raise EngineRequestError(f"unknown field {name!r} in {section} (known: {', '.join(sorted(known))})",
                                         f"{section}.{name}")
            if value is not None:
                fields[name] = value
    return fields
