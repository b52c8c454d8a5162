"""Sentence embeddings for a worker serving an embedding model (mean pooling, then L2 normalisation)."""
from __future__ import annotations

import asyncio
from typing import Any, AsyncIterator

from pyimpl.llm.engine.outputs import EngineStats
from pyimpl.llm.errors import EngineRequestError
from pyimpl.llm.model_facts import ModelFacts, read_model_facts


class EmbeddingEngine:
    """A BERT-style encoder (e.g. all-MiniLM-L6-v2) loaded with transformers; runs off the event loop.

    Implements engine_api.EmbedEngine: no KV cache (block_size 0), nothing to abort."""

    block_size = 0
    abort_count = 0

    def __init__(self, model_path: str, max_length: int = 256, facts: ModelFacts | None = None):
        import torch
        from transformers import AutoModel, AutoTokenizer
        facts = facts or read_model_facts(model_path)
        self.torch = torch
        self.tokenizer = AutoTokenizer.from_pretrained(facts.folder)
        self.model = AutoModel.from_pretrained(facts.folder).eval()
        self.max_length = max_length
        self.max_model_len = facts.context_length
        self.eos_token_ids = list(facts.eos_token_ids)
        self.num_running = self.num_requests = 0
        self._lock = asyncio.Lock()

    def embed(self, texts: list[str]) -> tuple[list[list[float]], int]:
        """Unit-length sentence vectors and the number of tokens read; a text over the model's maximum length is
        refused (EngineRequestError naming it), never silently truncated."""
        torch = self.torch
        batch = self.tokenizer(texts, padding=True, truncation=False, return_tensors="pt")
        lengths = batch["attention_mask"].sum(1).tolist()
        too_long = next((i for i, n in enumerate(lengths) if n > self.max_length), None)
        if too_long is not None:
            raise EngineRequestError(f"'input[{too_long}]' has {lengths[too_long]} tokens; this embedding model reads "
                                     f"at most {self.max_length}", f"input[{too_long}]")
        with torch.inference_mode():
            hidden = self.model(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
        vectors = torch.nn.functional.normalize(pooled, p=2, dim=1)
        return vectors.tolist(), int(batch["attention_mask"].sum())

    async def handler(self, request: dict, context: Any = None) -> AsyncIterator[dict]:
        """Worker wire handler: `{"input": [texts]}` -> one `{"embeddings", "prompt_tokens"}` chunk."""
        self.num_requests += 1
        self.num_running += 1
        try:
            texts = request.get("input") if isinstance(request, dict) else None
            if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
                raise EngineRequestError("this worker serves embeddings: a request is {\"input\": [texts]}", "input")
            async with self._lock:
                vectors, tokens = await asyncio.to_thread(self.embed, texts)
        finally:
            self.num_running -= 1
        yield {"embeddings": vectors, "prompt_tokens": tokens}

    def stats(self) -> EngineStats:
        """Requests being embedded (and the count so far, in `extra`); no KV blocks."""
        return EngineStats(num_running=self.num_running, num_waiting=0, kv_blocks_used=0, kv_blocks_total=0,
                           prefix_cache_hit_rate=0.0, extra={"num_requests": self.num_requests})

    async def shutdown(self) -> None:
        """Nothing to release beyond the Python objects."""
