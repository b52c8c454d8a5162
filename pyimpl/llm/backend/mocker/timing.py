"""How long a mock engine step takes: Dynamo's mocker polynomials (lib/mocker/src/common/perf_model.rs,
fitted on vLLM steps on an H100), divided by the speedup ratio.

prefill ms = 4.209989e-7·T² + 1.518344e-2·T + 16.50142, T = uncached prompt tokens computed in the step
(cached prefix tokens cost nothing, which is what makes a prefix hit visible in TTFT);
decode ms = max(1, −25.74·a² + 54.01·a + 5.74), a = KV utilisation (blocks in use / total: the batch's
contexts); a step that prefills and decodes costs both.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PerfModel:
    """Step durations in seconds; `speedup_ratio` > 1 runs the simulated GPU that many times faster."""

    speedup_ratio: float = 1.0

    def __post_init__(self) -> None:
        if not self.speedup_ratio > 0:
            raise ValueError(f"speedup_ratio must be positive, got {self.speedup_ratio!r}")

    @staticmethod
    def prefill_ms(tokens: int) -> float:
        return 4.209989e-7 * tokens * tokens + 1.518344e-2 * tokens + 16.50142 if tokens > 0 else 0.0

    @staticmethod
    def decode_ms(kv_utilisation: float) -> float:
        a = kv_utilisation
        return max(1.0, -25.74 * a * a + 54.01 * a + 5.74)

    def step_s(self, prefill_tokens: int, decoding: bool, kv_utilisation: float) -> float:
        ms = self.prefill_ms(prefill_tokens) + (self.decode_ms(kv_utilisation) if decoding else 0.0)
        return ms / 1000.0 / self.speedup_ratio
