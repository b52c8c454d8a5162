"""Prompt logprobs (SamplingParams.prompt_logprobs): each prompt token's logprob under the model and the top k at
its position, from the logits of every prompt row the prefill computes (vLLM's prompt_logprobs).

Memory stays bounded however long the prompt: the scheduler gives such a sequence at most MAX_ROWS_PER_STEP
prompt rows per step (so a step's logits are at most that many rows x vocab), and the log-softmax and top-k run
over SOFTMAX_ROWS rows at a time. Cached prefix blocks are never reused for such a sequence (their rows' logits
were never kept), so its whole prompt is computed.
"""
from __future__ import annotations

import torch

from .sequence import Sequence

MAX_ROWS_PER_STEP = 256   # prompt rows a sequence asking for prompt logprobs computes per step
SOFTMAX_ROWS = 64         # rows per log-softmax/top-k pass


def score_prompt_rows(seq: Sequence, logits: torch.Tensor, vocab_size: int) -> None:
    """Append to `seq` the logprobs of the prompt tokens that `logits` (the rows of seq.prompt_rows of this step,
    in order) predict: row j scores prompt token len(seq.prompt_logprobs) + j."""
    first = len(seq.prompt_logprobs)
    targets = seq.prompt_token_ids[first:first + logits.shape[0]]
    if len(targets) != logits.shape[0]:
        raise RuntimeError(f"{logits.shape[0]} prompt logits rows for {len(targets)} unscored prompt tokens")
    k = seq.params.prompt_logprobs or 0
    for a in range(0, len(targets), SOFTMAX_ROWS):
        lp = torch.log_softmax(logits[a:a + SOFTMAX_ROWS, :vocab_size].float(), dim=-1)
        ids = torch.tensor(targets[a:a + SOFTMAX_ROWS], dtype=torch.long, device=lp.device)
        seq.prompt_logprobs.extend(lp.gather(1, ids.view(-1, 1)).view(-1).tolist())
        if k:
            top_v, top_i = lp.topk(k, dim=-1)
            seq.prompt_top_logprobs.extend(dict(zip(i, v)) for i, v in zip(top_i.tolist(), top_v.tolist()))
        else:
            seq.prompt_top_logprobs.extend({} for _ in range(lp.shape[0]))
