"""The commit rule (config group `sampler/commit`): how many masks a step commits.

METHOD.md section 6. Which masks come first is the order's (`order.py`, `sampler/order`); a
commit rule takes the top of that ranking (`Schedule.select`).

`FixedK`: the paper's tokens-per-step, `min(k, masks left)`.
`LladaSchedule`: LLaDA's reference `generate()`: a fixed number of steps per block, the block's
masks spread as `n // s` per step plus one on the first `n % s` steps (32 over 5 -> 7,7,6,6,6).
`ThresholdSchedule`: Fast-dLLM's threshold-parallel decoding: every candidate whose confidence
exceeds a threshold, and at least `min_tokens` (the most confident) per step.
A schedule plans a block as a (B, S) table of counts; `counts` reads it (and, for the threshold,
the step's confidences) and follows the masks left, so a remasking policy only adds steps
(timeline rollback). The commit threshold lives only in `ThresholdSchedule` (LLaDA2.1's S-Mode
is `ThresholdSchedule(0.5, k)`, conf/sampler/commit/s_mode.yaml).
"""

from __future__ import annotations

import torch

from backplay_exp.samplers.select import select_top
from backplay_exp.samplers.state import Step


class Schedule:
    """How many masks each step of a block commits (subclasses plan the block)."""

    name = "schedule"
    # the paper's k where the schedule has one (reported as results.json's tokens_per_step)
    tokens_per_step: int | None = None

    def check(self, gen_length: int, block_length: int) -> None:
        """Reject geometries this schedule cannot run."""

    def plain_steps(self, block_length: int, num_blocks: int) -> int:
        """Steps a block takes without remasking (at most): the termination cap's unit."""
        raise NotImplementedError

    def plan(self, block_masks: torch.Tensor, num_blocks: int) -> torch.Tensor:
        """`block_masks` (B,) masks at the block's start -> (B, S) planned counts per step."""
        raise NotImplementedError

    def counts(self, plan: torch.Tensor, step: Step) -> torch.Tensor:
        """(b,) masks to commit this step, from the block's plan (b, S) and the step's view."""
        return step_counts(plan, step.in_block, step.candidates.sum(-1))

    def select(self, plan: torch.Tensor, step: Step, scores: torch.Tensor) -> torch.Tensor:
        """(b, T) bool, the masks this step commits: the `counts` best-`scores` candidates.

        Args:
            plan: (b, S) the block's plan of the step's rows.
            step: The step (its candidates, confidences and steps taken in the block).
            scores: (b, T) the order's ranking of the candidates (higher first).
        """
        counts = self.counts(plan, step)  # (b,)
        return select_top(scores, step.candidates, counts)


class FixedK(Schedule):
    """Commit `k` tokens per step (fewer when fewer masks are left).

    Args:
        k: Tokens per step.
    """

    name = "fixed_k"

    def __init__(self, k: int) -> None:
        if k < 1:
            raise ValueError(f"tokens_per_step must be >= 1, got {k}")
        self.k = self.tokens_per_step = k

    def check(self, gen_length: int, block_length: int) -> None:
        """Reject geometries this schedule cannot run."""
        if self.k > block_length:
            raise ValueError(
                f"tokens_per_step={self.k} exceeds block_length={block_length}: "
                "lower sampler.tokens_per_step or raise the block length"
            )

    def plain_steps(self, block_length: int, num_blocks: int) -> int:
        """Steps a block takes without remasking."""
        return -(-block_length // self.k)

    def plan(self, block_masks: torch.Tensor, num_blocks: int) -> torch.Tensor:
        """A constant plan: `block_masks` (B,) -> (B, 1) of k."""
        return torch.full_like(block_masks, self.k)[:, None]


class LladaSchedule(Schedule):
    """LLaDA's per-block transfer schedule with `steps` steps over the whole generation.

    Args:
        steps: Total denoising steps; must be a multiple of the number of blocks.
    """

    name = "llada"

    def __init__(self, steps: int) -> None:
        if steps < 1:
            raise ValueError(f"sampler.commit.steps must be >= 1, got {steps}")
        self.steps = steps

    def check(self, gen_length: int, block_length: int) -> None:
        """LLaDA's own assertions, as errors that say what to change."""
        if gen_length % block_length:
            raise ValueError(
                f"gen_length={gen_length} is not a multiple of block_length={block_length}"
            )
        if self.steps % (gen_length // block_length):
            raise ValueError(
                f"sampler.commit.steps={self.steps} is not a multiple of the number of blocks "
                f"({gen_length // block_length})"
            )

    def plain_steps(self, block_length: int, num_blocks: int) -> int:
        """Steps per block."""
        return self.steps // num_blocks

    def plan(self, block_masks: torch.Tensor, num_blocks: int) -> torch.Tensor:
        """`block_masks` (B,) masks at the block's start -> (B, S) counts per step."""
        s = self.steps // num_blocks
        base, extra = block_masks // s, block_masks % s  # (B,)
        return base[:, None] + (torch.arange(s, device=block_masks.device) < extra[:, None])


class ThresholdSchedule(FixedK):
    """Threshold-parallel commits (Fast-dLLM): every mask above `threshold`, >= `min_tokens`.

    Composes with every remasker and order: the order still ranks the candidates, this rule only
    says how many a step takes. `min_tokens` plays the paper's k (Fast-dLLM: 1), so a
    tokens-per-step sweep sweeps it too; it plans and caps a block as `FixedK(min_tokens)`.

    Args:
        threshold: Confidence a proposed token must exceed to be committed (Fast-dLLM: 0.9).
        min_tokens: Committed per step even when none is above the threshold (the most
            confident ones first).
    """

    name = "threshold"

    def __init__(self, threshold: float, min_tokens: int = 1) -> None:
        if not 0 < threshold < 1 or min_tokens < 1:
            raise ValueError(
                f"sampler.commit: need 0 < threshold < 1 and min_tokens >= 1, got "
                f"{threshold}, {min_tokens}"
            )
        super().__init__(min_tokens)
        self.threshold, self.min_tokens = threshold, min_tokens

    def check(self, gen_length: int, block_length: int) -> None:
        """Any geometry runs (`min_tokens` above the block length commits the whole block)."""

    def counts(self, plan: torch.Tensor, step: Step) -> torch.Tensor:
        """(b,) candidates above the threshold, at least `min_tokens`, at most all of them."""
        above = (step.candidates & (step.conf > self.threshold)).sum(-1)  # (b,)
        return torch.minimum(above.clamp(min=self.min_tokens), step.candidates.sum(-1))


def step_counts(plan: torch.Tensor, step: torch.Tensor, masks_left: torch.Tensor) -> torch.Tensor:
    """Tokens to commit this step.

    Args:
        plan: (B, S) planned counts of the block.
        step: (B,) steps already taken in the block.
        masks_left: (B,) masks that may be committed now.

    Returns:
        (B,) `plan[step]` (past the plan, the largest planned count), at most `masks_left`.
    """
    last = plan.shape[1] - 1
    planned = plan.gather(1, step.clamp(max=last)[:, None]).squeeze(1)  # (B,)
    planned = torch.where(step > last, plan.max(1).values, planned)
    return torch.minimum(planned, masks_left)
