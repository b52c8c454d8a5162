"""Next-token choice for a batch: logits processors, penalties, bias, min_tokens, then greedy or sampling."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .sequence import Sequence


@dataclass
class SamplerOutput:
    token_ids: list[int]
    logprobs: list[float | None]  # per row, None where not asked
    top_logprobs: list[dict[int, float] | None]


class Sampler:
    """Vectorised over the batch; all-greedy batches take an argmax fast path."""

    def __init__(self, vocab_size: int, eos_token_ids: list[int]) -> None:
        self.vocab_size = vocab_size
        self.eos_token_ids = list(eos_token_ids)

    def __call__(self, logits: torch.Tensor, seqs: list[Sequence]) -> SamplerOutput:
        logits = logits[:, : self.vocab_size]
        self._process_logits(logits, seqs)
        params = [s.params for s in seqs]
        want_lp = [p.wants_logprobs for p in params]
        if all(p.greedy for p in params):
            token_ids = logits.argmax(dim=-1)
        else:
            token_ids = self._sample(logits, seqs)
        ids = token_ids.tolist()
        logprobs: list[float | None] = [None] * len(seqs)
        tops: list[dict[int, float] | None] = [None] * len(seqs)
        if any(want_lp):
            lp = torch.log_softmax(logits, dim=-1)
            chosen = lp.gather(1, token_ids.view(-1, 1)).view(-1).tolist()
            k = max(p.num_top_logprobs for p in params)
            top_v, top_i = (lp.topk(k, dim=-1) if k else (None, None))
            for r, p in enumerate(params):
                if not want_lp[r]:
                    continue
                logprobs[r] = chosen[r]
                n = p.num_top_logprobs
                tops[r] = dict(zip(top_i[r, :n].tolist(), top_v[r, :n].tolist())) if n else {}
        return SamplerOutput(ids, logprobs, tops)

    def _process_logits(self, logits: torch.Tensor, seqs: list[Sequence]) -> None:
        """In place: logits processors, repetition/presence/frequency penalties, logit_bias, min_tokens ban."""
        for r, s in enumerate(seqs):
            p = s.params
            if p.logits_processors:
                for processor in p.logits_processors:
                    logits[r] = processor(s.output_token_ids, logits[r])
            if p.repetition_penalty != 1.0 or p.presence_penalty or p.frequency_penalty:
                row = logits[r]
                if p.repetition_penalty != 1.0:
                    seen = torch.tensor(sorted(set(s.token_ids)), dtype=torch.long, device=logits.device)
                    vals = row.index_select(0, seen)
                    row.index_copy_(0, seen, torch.where(vals > 0, vals / p.repetition_penalty,
                                                         vals * p.repetition_penalty))
                out = s.output_token_ids
                if out and (p.presence_penalty or p.frequency_penalty):
                    counts = torch.bincount(torch.tensor(out, device=logits.device), minlength=self.vocab_size)
                    counts = counts[: self.vocab_size].to(row.dtype)
                    row -= p.frequency_penalty * counts + p.presence_penalty * (counts > 0).to(row.dtype)
            if p.logit_bias:
                idx = torch.tensor(list(p.logit_bias.keys()), dtype=torch.long, device=logits.device)
                val = torch.tensor(list(p.logit_bias.values()), dtype=logits.dtype, device=logits.device)
                logits[r].index_add_(0, idx, val)
                banned = [t for t, b in p.logit_bias.items() if b <= -100.0]
                if banned:           # OpenAI: -100 bans the token, however large its logit
                    logits[r, banned] = float("-inf")
            if s.num_output_tokens < p.min_tokens:
                banned = list(p.stop_token_ids) + ([] if p.ignore_eos else self.eos_token_ids)
                banned = [t for t in banned if t < self.vocab_size]
                if banned:
                    logits[r, banned] = float("-inf")

    def _sample(self, logits: torch.Tensor, seqs: list[Sequence]) -> torch.Tensor:
        device = logits.device
        params = [s.params for s in seqs]
        greedy = logits.argmax(dim=-1)
        rows = [r for r, p in enumerate(params) if not p.greedy]
        idx = torch.tensor(rows, dtype=torch.long, device=device)
        sub = [params[r] for r in rows]
        x = logits.index_select(0, idx)
        x = x / torch.tensor([p.temperature for p in sub], device=device, dtype=x.dtype)[:, None]
        if any(p.top_k_enabled or p.top_p < 1.0 for p in sub):
            x = _top_k_top_p(x, [p.top_k if p.top_k_enabled else x.shape[1] for p in sub],
                             [p.top_p for p in sub])
        probs = torch.softmax(x, dim=-1)
        if any(p.min_p > 0 for p in sub):
            min_p = torch.tensor([p.min_p for p in sub], device=device, dtype=probs.dtype)[:, None]
            probs = probs.masked_fill(probs < min_p * probs.max(dim=-1, keepdim=True).values, 0.0)
        noise = torch.empty_like(probs).exponential_()
        for j, r in enumerate(rows):
            g = seqs[r].generator
            if g is not None:
                noise[j].exponential_(generator=g)
        sampled = (probs / noise).argmax(dim=-1)
        return greedy.index_copy(0, idx, sampled)


def _top_k_top_p(x: torch.Tensor, top_k: list[int], top_p: list[float]) -> torch.Tensor:
    """Mask logits outside each row's top-k and top-p nucleus (at least one token always kept)."""
    sorted_x, order = x.sort(dim=-1, descending=True)
    ranks = torch.arange(x.shape[1], device=x.device)[None, :]
    k = torch.tensor(top_k, device=x.device)[:, None]
    drop = ranks >= k
    p = torch.tensor(top_p, device=x.device, dtype=x.dtype)[:, None]
    probs = torch.softmax(sorted_x.masked_fill(drop, float("-inf")), dim=-1)
    before = probs.cumsum(dim=-1) - probs  # mass of strictly better tokens
    drop |= (before > p) & (ranks > 0)
    sorted_x = sorted_x.masked_fill(drop, float("-inf"))
    return torch.empty_like(x).scatter_(1, order, sorted_x)
