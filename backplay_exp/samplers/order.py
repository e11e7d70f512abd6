"""The order (config group `sampler/order`): which masked candidates a step commits first.

METHOD.md section 6. An order scores the candidates; the commit rule (`commit.py`) takes as many
of the best as it counts.

- `ConfidenceOrder` (`confidence`, LLaDA's low-confidence remasking, BackPlay Alg. 3).
- `RandomOrder` (`random`, LLaDA's `remasking='random'`).
"""

from __future__ import annotations

import torch


class ConfidenceOrder:
    """LLaDA's low-confidence remasking (BackPlay Alg. 3): the most confident masks first."""

    name = "confidence"

    def scores(
        self, confidence: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """(B, T) ranking of the candidates: their confidence."""
        return confidence


class RandomOrder(ConfidenceOrder):
    """LLaDA's `remasking='random'`: masks committed in a uniformly random order."""

    name = "random_order"

    def scores(
        self, confidence: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """(B, T) i.i.d. uniform scores (drawn like LLaDA's `torch.rand((B, T))`)."""
        return torch.rand(confidence.shape, generator=generator, device=confidence.device)
