"""Model aliases (as BodhiApp has them): an alias names a served model plus default request parameters.

File format (JSON or YAML): `{alias: {"model": served_name, "params": {...defaults}}}`; keys other than
`model`/`params` in an entry are treated as defaults too. The user's own fields win over the defaults.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class ModelAlias:
    """One alias: the served model it points to and the defaults merged under the user's request."""

    name: str
    model: str
    defaults: dict = field(default_factory=dict)

    def apply(self, body: dict) -> dict:
        """The request body with defaults filled in and `model` replaced by the served name."""
        return {**self.defaults, **body, "model": self.model}


def load_aliases(path: str | Path) -> dict[str, ModelAlias]:
    """Read an alias file; YAML when it ends in .yaml/.yml, else JSON."""
    return parse_aliases(read_config_file(path))


def read_config_file(path: str | Path) -> object:
    """The decoded content of a JSON file, or a YAML one when it ends in .yaml/.yml."""
    path = Path(path)
    text = path.read_text()
    if path.suffix in (".yaml", ".yml"):
        import yaml
        return yaml.safe_load(text) or {}
    return json.loads(text)


def parse_aliases(data: dict) -> dict[str, ModelAlias]:
    """Aliases from an already-decoded mapping."""
    if not isinstance(data, dict):
        raise ValueError("alias file must map alias names to entries")
    aliases = {}
    for name, entry in data.items():
        if isinstance(entry, str):
            entry = {"model": entry}
        if not isinstance(entry, dict) or not isinstance(entry.get("model"), str):
            raise ValueError(f"alias {name!r} needs a 'model'")
        defaults = {k: v for k, v in entry.items() if k not in ("model", "params")}
        defaults.update(entry.get("params") or {})
        aliases[name] = ModelAlias(name, entry["model"], defaults)
    return aliases
