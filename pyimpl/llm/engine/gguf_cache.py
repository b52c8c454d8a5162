"""A GGUF file turned into a HF-style folder (config, generation config, tokenizer, tensor index), cached by file key.

Converting the tokenizer takes transformers ~15-30 s and parsing the header ~10 s, so the result is kept under
`$DYNAMO_LLM_CACHE_DIR` (default `$XDG_CACHE_HOME/dynamo-llm`, else `~/.cache/dynamo-llm`) in `gguf/<key>/`.
The key is a SHA-256 of the file's size, mtime and first 16 MiB + last 1 MiB (not a full hash: a 5 GB file
would take seconds to hash); a changed or touched file is converted again. Every process reads the folder with
the ordinary HF loaders (AutoConfig, AutoTokenizer), so the worker, the preprocessor and the C ABI agree.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .gguf_names import hf_config
from .gguf_reader import GgufHeader, find_gguf, read_header

log = logging.getLogger(__name__)

CACHE_ENV = "DYNAMO_LLM_CACHE_DIR"
FORMAT_VERSION = 2
INDEX_FILE = "gguf_index.json"
_HEAD, _TAIL = 16 << 20, 1 << 20

# Used when the file has no tokenizer.chat_template (documented in README.md, "GGUF models"): such files are mostly
# base models, which continue a plain transcript far better than turn markers they were not tuned on.
DEFAULT_CHAT_TEMPLATE = (
    "{{ bos_token or '' }}{%- for m in messages -%}{{ (m['role'] | capitalize) + ': ' + m['content'] + '\n\n' }}"
    "{%- endfor -%}{%- if add_generation_prompt -%}{{ 'Assistant:' }}{%- endif -%}")


@dataclass
class GgufModel:
    """A GGUF file and its converted folder (HF config + tokenizer files + the tensor index)."""

    gguf_path: str
    folder: str

    def header(self) -> GgufHeader:
        """Metadata and tensor index, read from the cache (no GGUF parse)."""
        with open(os.path.join(self.folder, INDEX_FILE)) as f:
            return GgufHeader.from_dict(json.load(f)["header"])


def cache_root() -> Path:
    """Where converted GGUF folders live ($DYNAMO_LLM_CACHE_DIR, $XDG_CACHE_HOME/dynamo-llm, ~/.cache/dynamo-llm)."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "dynamo-llm"


def file_key(path: str) -> str:
    """Cache key: SHA-256 of size, mtime, the first 16 MiB and the last 1 MiB (see the module docstring)."""
    st = os.stat(path)
    h = hashlib.sha256(f"v{FORMAT_VERSION}:{st.st_size}:{st.st_mtime_ns}".encode())
    with open(path, "rb") as f:
        h.update(f.read(_HEAD))
        if st.st_size > _HEAD:
            f.seek(max(_HEAD, st.st_size - _TAIL))
            h.update(f.read(_TAIL))
    return h.hexdigest()[:32]


def resolve_model_dir(path: str | os.PathLike) -> str:
    """The HF-style folder for `path`: itself for a HF folder, the converted cache folder for a GGUF path."""
    gguf = find_gguf(path)
    return prepare(gguf).folder if gguf else str(path)


def prepare(gguf_path: str) -> GgufModel:
    """The converted folder of a GGUF file, converting it on first use (atomic: a half-written folder is never used)."""
    gguf_path = os.path.abspath(gguf_path)
    folder = cache_root() / "gguf" / file_key(gguf_path)
    if (folder / INDEX_FILE).is_file():
        return GgufModel(gguf_path, str(folder))
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".convert-", dir=folder.parent))
    try:
        _convert(gguf_path, tmp)
        try:
            os.rename(tmp, folder)
        except OSError:  # another process finished first: use its folder
            if not (folder / INDEX_FILE).is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return GgufModel(gguf_path, str(folder))


def _convert(gguf_path: str, out: Path) -> None:
    from transformers import AutoConfig, AutoTokenizer

    log.info("converting %s (config and tokenizer; cached under %s)", gguf_path, out.parent)
    header = read_header(gguf_path)
    config = hf_config(header.metadata, {t.name: t.shape for t in header.tensors})
    AutoConfig.for_model(**config).save_pretrained(out)
    try:
        tokenizer = AutoTokenizer.from_pretrained(os.path.dirname(gguf_path), gguf_file=os.path.basename(gguf_path),
                                                  local_files_only=True)
    except Exception as e:  # transformers raises KeyError/ValueError/... on missing or unknown tokenizer metadata
        raise ValueError(f"{gguf_path}: no tokenizer could be built from its metadata ({type(e).__name__}: {e})") from e
    eos = [config["eos_token_id"]] if "eos_token_id" in config else []
    eot = header.metadata.get("tokenizer.ggml.eot_token_id")
    if eot is not None:
        eos.append(int(eot))
    if not getattr(tokenizer, "chat_template", None):
        tokenizer.chat_template = DEFAULT_CHAT_TEMPLATE
        log.warning("%s has no chat template; chat uses the default plain 'User: ...' transcript "
                    "(README: GGUF models)", gguf_path)
    tokenizer.save_pretrained(out)
    generation = {"eos_token_id": list(dict.fromkeys(eos))}
    if "bos_token_id" in config:
        generation["bos_token_id"] = config["bos_token_id"]
    (out / "generation_config.json").write_text(json.dumps(generation, indent=1))
    index = {"format": FORMAT_VERSION, "gguf_path": gguf_path, "header": header.to_dict()}
    (out / INDEX_FILE).write_text(json.dumps(index))

