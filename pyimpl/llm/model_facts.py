"""The facts of a model folder (or .gguf file) that the engine, the model card and the preprocessor share.

One reader, so they cannot disagree. It reads the folder's JSON files only (config.json, generation_config.json,
tokenizer_config.json, special_tokens_map.json, tokenizer.json): no weights, no tokenizer object. A .gguf file, or
a folder holding one, is read through its converted folder (gguf_cache.resolve_model_dir, converted once).

The rules:
- EOS ids: generation_config.json's `eos_token_id`, then config.json's, then the id of the tokenizer's
  `eos_token` (tokenizer_config.json or special_tokens_map.json, looked up in tokenizer.json); an int or a list
  each, merged in that order without repeats. The first is what a model's own generation ends with.
  A folder whose tokenizer has no tokenizer.json (SentencePiece `tokenizer.model` only) adds no tokenizer EOS.
- Context length: config.json's `max_position_embeddings`, else `n_positions`, `max_sequence_length`,
  `seq_length`, `n_ctx` (then the same in `text_config`); DEFAULT_CONTEXT_LENGTH when none is given. The
  engine may serve less (its max_model_len argument or a KV pool too small), never more.
- Vocabulary size: config.json's `vocab_size` (or `text_config`'s), else tokenizer.json's size, else 0 (unknown).
- Model type: "embedding" for a sentence-transformers folder (modules.json) or an encoder architecture, else "chat".
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec

DEFAULT_CONTEXT_LENGTH = 2048
CONTEXT_KEYS = ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length", "n_ctx")
ENCODER_ARCHITECTURES = frozenset({"BertModel", "XLMRobertaModel", "RobertaModel", "NomicBertModel"})
CHAT_TEMPLATE_FILES = ("chat_template.jinja", "chat_template.json")


@dataclass(frozen=True)
class ModelFacts:
    """What a model folder says about the model (see the module docstring for the rule behind each field)."""

    folder: str                        # the HF-style folder read (a GGUF's converted folder)
    architecture: str | None           # config.json's architectures[0], e.g. "LlamaForCausalLM"
    model_type: str                    # "chat" | "embedding" (what a worker serves it as)
    context_length: int
    vocab_size: int
    eos_token_ids: list[int] = field(default_factory=list)
    bos_token_id: int | None = None
    has_chat_template: bool = False
    dtype: str | None = None           # config.json's dtype (torch_dtype), e.g. "bfloat16"; None: not given
    config_model_type: str | None = None  # config.json's model_type, e.g. "llama", "gemma3_text"
    chat_template: str | None = None   # its text (tokenizer_config.json, else chat_template.jinja / .json); None: none


def read_model_facts(model_path: str | Path) -> ModelFacts:
    """The facts of a HF folder, a .gguf file or a folder holding one; ValueError if the path does not exist."""
    from pyimpl.llm.engine.gguf_cache import resolve_model_dir

    if not Path(model_path).exists():
        raise ValueError(f"model folder not found: {model_path}")
    folder = Path(resolve_model_dir(model_path))
    config = _load_json(folder / "config.json")
    text_config = config.get("text_config") if isinstance(config.get("text_config"), dict) else {}
    generation = _load_json(folder / "generation_config.json")
    tokenizer_config = _load_json(folder / "tokenizer_config.json")
    special = _load_json(folder / "special_tokens_map.json")
    token_ids = _TokenIds(folder / "tokenizer.json")

    eos = _ids(generation.get("eos_token_id")) + _ids(config.get("eos_token_id")) + _ids(text_config.get("eos_token_id"))
    eos += _ids(token_ids.get(_token_text(tokenizer_config.get("eos_token") or special.get("eos_token"))))
    bos = _ids(generation.get("bos_token_id")) + _ids(config.get("bos_token_id"))
    bos += _ids(token_ids.get(_token_text(tokenizer_config.get("bos_token") or special.get("bos_token"))))
    architectures = config.get("architectures") or []
    architecture = architectures[0] if architectures else None
    is_embedding = (folder / "modules.json").exists() or architecture in ENCODER_ARCHITECTURES
    vocab = _first_int(config, text_config, keys=("vocab_size",)) or token_ids.size()
    return ModelFacts(
        folder=str(folder), architecture=architecture, model_type="embedding" if is_embedding else "chat",
        context_length=_first_int(config, text_config, keys=CONTEXT_KEYS) or DEFAULT_CONTEXT_LENGTH,
        vocab_size=vocab, eos_token_ids=list(dict.fromkeys(eos)), bos_token_id=bos[0] if bos else None,
        has_chat_template=bool(tokenizer_config.get("chat_template"))
        or any((folder / name).is_file() for name in CHAT_TEMPLATE_FILES),
        dtype=_dtype(config) or _dtype(text_config), config_model_type=config.get("model_type"),
        chat_template=_chat_template(folder, tokenizer_config))


def _chat_template(folder: Path, tokenizer_config: dict) -> str | None:
    """The chat template's text: tokenizer_config.json's (a string, or named templates: all of them joined), else
    chat_template.jinja, else chat_template.json's `chat_template`."""
    template = tokenizer_config.get("chat_template")
    if isinstance(template, list):
        template = "\n".join(t.get("template", "") for t in template if isinstance(t, dict))
    if isinstance(template, str) and template:
        return template
    try:
        return (folder / CHAT_TEMPLATE_FILES[0]).read_text()
    except OSError:
        template = _load_json(folder / CHAT_TEMPLATE_FILES[1]).get("chat_template")
        return template if isinstance(template, str) and template else None


def _load_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _ids(value: Any) -> list[int]:
    """Token ids from an int, a list of ints or None (anything else is ignored)."""
    values = value if isinstance(value, list) else [value]
    return [int(v) for v in values if isinstance(v, int) and not isinstance(v, bool) and v >= 0]


def _first_int(*configs: dict, keys: tuple[str, ...]) -> int:
    """The first positive int under one of `keys`, in `configs` order (0 when none)."""
    for config in configs:
        for key in keys:
            value = config.get(key)
            if isinstance(value, int) and not isinstance(value, bool) and value > 0:
                return value
    return 0


def _token_text(token: Any) -> str | None:
    """A special token as tokenizer_config.json writes it: a string or an AddedToken dict with `content`."""
    if isinstance(token, dict):
        token = token.get("content")
    return token if isinstance(token, str) else None


class _AddedToken(msgspec.Struct):
    id: int
    content: str


class _AddedTokens(msgspec.Struct):
    added_tokens: list[_AddedToken] = []


class _Vocab(msgspec.Struct):
    vocab: dict[str, int] | list[Any] | None = None


class _FullTokenizer(msgspec.Struct):
    added_tokens: list[_AddedToken] = []
    model: _Vocab | None = None


class _TokenIds:
    """Token text -> id from tokenizer.json: its added tokens first (a quick read: special tokens live there),
    the whole vocabulary (a 30 MiB parse for a 256k vocabulary) only when asked for a token not among them."""

    def __init__(self, path: Path):
        self.path = path
        self.ids = {t.content: t.id for t in self._decode(_AddedTokens).added_tokens}
        self.full = False

    def _decode(self, kind: type) -> Any:
        try:
            return msgspec.json.decode(self.path.read_bytes(), type=kind)
        except (OSError, msgspec.DecodeError, msgspec.ValidationError):
            return kind()

    def _load_all(self) -> None:
        if self.full:
            return
        self.full = True
        whole = self._decode(_FullTokenizer)
        vocab = whole.model.vocab if whole.model is not None else None
        ids: dict[str, int] = {}
        if isinstance(vocab, dict):
            ids.update(vocab)
        elif isinstance(vocab, list):  # Unigram: [[piece, score], ...]
            ids.update((e[0], i) for i, e in enumerate(vocab) if isinstance(e, list) and e and isinstance(e[0], str))
        ids.update(self.ids)
        self.ids = ids

    def get(self, text: str | None) -> int | None:
        if text is None:
            return None
        if text not in self.ids:
            self._load_all()
        return self.ids.get(text)

    def size(self) -> int:
        """One past the largest token id (0 without a tokenizer.json)."""
        self._load_all()
        return max(self.ids.values(), default=-1) + 1


def _dtype(config: dict) -> str | None:
    value = config.get("dtype") or config.get("torch_dtype")
    return value if isinstance(value, str) else None
