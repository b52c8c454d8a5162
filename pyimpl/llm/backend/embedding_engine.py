"""Sentence embeddings for a worker serving an embedding model (mean pooling, then L2 normalisation)."""
from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, AsyncIterator


@dataclass
class EmbeddingStats:
    """What the stats endpoint reports for an embedding worker."""

    num_running: int = 0
    num_requests: int = 0


class EmbeddingEngine:
    """A BERT-style encoder (e.g. all-MiniLM-L6-v2) loaded with transformers; runs off the event loop."""

    def __init__(self, model_path: str, max_length: int = 256):
        import torch
        from transformers import AutoModel, AutoTokenizer
        self.torch = torch
        self.tokenizer = AutoTokenizer.from_pretrained(model_path)
        self.model = AutoModel.from_pretrained(model_path).eval()
        self.max_length = max_length
        self.max_model_len = int(getattr(self.model.config, "max_position_embeddings", 512))
        self.block_size = 0
        self.eos_token_ids: list[int] = []
        self.abort_count = 0
        self._stats = EmbeddingStats()
        self._lock = asyncio.Lock()

    def embed(self, texts: list[str]) -> tuple[list[list[float]], int]:
        """Unit-length sentence vectors and the number of tokens read."""
        torch = self.torch
        batch = self.tokenizer(texts, padding=True, truncation=True, max_length=self.max_length, return_tensors="pt")
        with torch.inference_mode():
            hidden = self.model(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
        vectors = torch.nn.functional.normalize(pooled, p=2, dim=1)
        return vectors.tolist(), int(batch["attention_mask"].sum())

    async def handler(self, request: dict, context: Any = None) -> AsyncIterator[dict]:
        """Worker wire handler: `{"input": [texts]}` -> one `{"embeddings", "prompt_tokens"}` chunk."""
        self._stats.num_requests += 1
        self._stats.num_running += 1
        try:
            async with self._lock:
                vectors, tokens = await asyncio.to_thread(self.embed, list(request["input"]))
        finally:
            self._stats.num_running -= 1
        yield {"embeddings": vectors, "prompt_tokens": tokens}

    def stats(self) -> EmbeddingStats:
        return self._stats

    async def shutdown(self) -> None:
        """Nothing to release beyond the Python objects."""
