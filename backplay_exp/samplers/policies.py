"""Decoding policies (config group `remask`): which masks to commit, and what to remask.

METHOD.md section 6. A policy ranks the masked candidates of a step (`commit_scores`) and may
return committed positions to put back under the mask (`remask`; none by default). The loop in
`decoder.py` does the rest, so every policy shares one loop.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class StepState:
    """What a policy sees at one step, for the rows decoded in it (b of them).

    Attributes:
        x: (b, T) current tokens, prompt included.
        committed: (b, T) bool, response tokens committed so far that may be judged (the window).
        p_err: (b, T) head error probabilities, or None when the policy needs no head.
        nfe: (b,) forward passes each row had before this step.
        step_in_block: (b,) steps each row has taken in the current block.
        max_block_steps: Steps per block after which remasking stops (termination guarantee).
        last_remask: (b, T) long, the step (nfe) at which each position was last remasked.
    """

    x: torch.Tensor
    committed: torch.Tensor
    p_err: torch.Tensor | None
    nfe: torch.Tensor
    step_in_block: torch.Tensor
    max_block_steps: int
    last_remask: torch.Tensor


class ConfidencePolicy:
    """LLaDA's low-confidence remasking (BackPlay Alg. 3): commit the most confident masks."""

    name = "confidence"
    uses_head = False
    block_buffer = 0

    def commit_scores(
        self, confidence: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """(B, T) ranking of candidates: their confidence."""
        return confidence

    def remask(
        self, state: StepState, generator: torch.Generator | None = None
    ) -> torch.Tensor | None:
        """Positions to remask this step: none."""
        return None


class RandomOrderPolicy(ConfidencePolicy):
    """LLaDA's `remasking='random'`: commit masks in a uniformly random order."""

    name = "random_order"

    def commit_scores(
        self, confidence: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """(B, T) i.i.d. uniform scores (drawn like LLaDA's `torch.rand((B, T))`)."""
        return torch.rand(confidence.shape, generator=generator, device=confidence.device)
