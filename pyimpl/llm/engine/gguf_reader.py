"""GGUF files: find the file behind a model path, read its metadata and tensor index, dequantize its tensors.

Parsing a GGUF header with the `gguf` package reads every tokenizer string (~10 s for a 262k vocabulary), so the
tensor index (name, type, shape, byte range) is kept as plain data: the cache stores it and later loads read
tensors straight from a memory map, dequantized by `gguf.quants.dequantize`.
"""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

GGUF_SUFFIX = ".gguf"
_BIG_ARRAYS = ("tokenizer.ggml.tokens", "tokenizer.ggml.scores", "tokenizer.ggml.token_type",
               "tokenizer.ggml.merges", "tokenizer.ggml.precompiled_charsmap")


@dataclass
class TensorEntry:
    """Where one tensor lives in the file: ggml type id, logical numpy shape, absolute byte offset and size."""

    name: str
    ggml_type: int
    shape: list[int]
    offset: int
    n_bytes: int


@dataclass
class GgufHeader:
    """The file's metadata (tokenizer arrays left out) and its tensor index."""

    metadata: dict
    tensors: list[TensorEntry]

    @property
    def architecture(self) -> str:
        return str(self.metadata.get("general.architecture", "?"))

    def to_dict(self) -> dict:
        return {"metadata": self.metadata, "tensors": [asdict(t) for t in self.tensors]}

    @classmethod
    def from_dict(cls, data: dict) -> "GgufHeader":
        return cls(dict(data["metadata"]), [TensorEntry(**t) for t in data["tensors"]])


def find_gguf(path: str | os.PathLike) -> str | None:
    """The .gguf file `path` names: the file itself, or the only .gguf in a folder without config.json; else None.

    A folder holding several .gguf files (or split files) is refused with a ValueError naming them."""
    p = Path(path)
    if p.is_file():
        return str(p) if p.suffix.lower() == GGUF_SUFFIX else None
    if p.suffix.lower() == GGUF_SUFFIX:
        raise FileNotFoundError(f"GGUF file not found: {p}")
    if not p.is_dir() or (p / "config.json").is_file():
        return None
    found = sorted(q for q in p.iterdir() if q.is_file() and q.suffix.lower() == GGUF_SUFFIX
                   and not q.name.startswith("mmproj"))
    if len(found) > 1:
        names = ", ".join(q.name for q in found)
        raise ValueError(f"{p} holds several GGUF files ({names}); pass the path of the one to load "
                         "(split GGUF files are not supported: merge them with llama-gguf-split --merge)")
    return str(found[0]) if found else None


def read_header(gguf_path: str) -> GgufHeader:
    """Metadata (without the big tokenizer arrays) and tensor index of a GGUF file, via gguf.GGUFReader."""
    from gguf import GGUFReader

    try:
        reader = GGUFReader(gguf_path, "r")
    except (ValueError, OSError) as e:
        raise ValueError(f"{gguf_path} is not a readable GGUF file: {e}") from e
    metadata = {}
    for key, fld in reader.fields.items():
        if key in _BIG_ARRAYS or key.startswith("GGUF."):
            continue
        value = fld.contents()
        metadata[key] = value.tolist() if isinstance(value, np.ndarray) else value
    tokens = reader.fields.get("tokenizer.ggml.tokens")
    if tokens is not None:
        metadata["tokenizer.ggml.tokens.count"] = len(tokens.data)
    tensors = [TensorEntry(t.name, int(t.tensor_type), [int(d) for d in reversed(t.shape.tolist())],
                           int(t.data_offset), int(t.n_bytes)) for t in reader.tensors]
    return GgufHeader(metadata, tensors)


def dequantize_tensor(mapped: np.ndarray, entry: TensorEntry) -> np.ndarray:
    """float32 array of `entry`'s logical shape from the memory-mapped file (any type gguf can dequantize)."""
    from gguf import GGMLQuantizationType
    from gguf.quants import dequantize, quant_shape_to_byte_shape

    try:
        qtype = GGMLQuantizationType(entry.ggml_type)
    except ValueError:
        raise ValueError(f"tensor {entry.name}: unknown ggml type id {entry.ggml_type}") from None
    raw = mapped[entry.offset:entry.offset + entry.n_bytes]
    if raw.size != entry.n_bytes:
        raise ValueError(f"tensor {entry.name}: the file ends before its data (truncated GGUF?)")
    if qtype == GGMLQuantizationType.BF16:  # plain bit pattern: a shift is faster than the generic path
        return (raw.view(np.uint16).astype(np.uint32) << 16).view(np.float32).reshape(entry.shape)
    try:
        out = dequantize(raw.reshape(quant_shape_to_byte_shape(entry.shape, qtype)), qtype)
    except NotImplementedError:
        raise ValueError(f"tensor {entry.name}: GGUF type {qtype.name} cannot be dequantized") from None
    out = np.asarray(out, dtype=np.float32).reshape(entry.shape)
    return out if out.flags.writeable else out.copy()  # F32 tensors are views of the read-only map


def row_chunks(entry: TensorEntry, max_elements: int = 1 << 22) -> list[tuple[int, TensorEntry]]:
    """(first row, sub-entry) pieces of a 2-D tensor of about max_elements each, dequantizable in parallel."""
    rows = entry.shape[0]
    per_row = int(np.prod(entry.shape[1:])) if len(entry.shape) > 1 else 0
    if per_row == 0 or rows * per_row <= max_elements:
        return [(0, entry)]
    row_bytes = entry.n_bytes // rows
    step = max(1, max_elements // per_row)
    return [(r, TensorEntry(entry.name, entry.ggml_type, [min(step, rows - r), *entry.shape[1:]],
                            entry.offset + r * row_bytes, min(step, rows - r) * row_bytes))
            for r in range(0, rows, step)]


def map_file(gguf_path: str) -> np.ndarray:
    """The whole file as a read-only uint8 memory map."""
    return np.memmap(gguf_path, dtype=np.uint8, mode="r")
