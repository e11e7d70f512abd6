"""Decoding policies (config group `remask`): which masks to commit, and what to remask.

METHOD.md section 6. A policy ranks the masked candidates of a step (`commit_scores`) and may
send committed tokens back under the mask (`remask`). The loop in `decoder.py` does the rest,
so every policy shares one loop.

- `confidence` (Alg. 3): commit the most confident masks; never remask.
- `random_order`: commit masks in random order; never remask.
- `backplay` (Alg. 1): confidence commits, plus, at steps `s mod stride == 0`, remask up to
  `max_remask` committed tokens of the look-back window whose head error probability exceeds
  `threshold`, skipping tokens remasked in the last `memory_steps` steps.
- `random` (section 4.5): `backplay` with i.i.d. uniform error scores instead of the head.
- `t2t_edit` (LLaDA2.1 token editing): confidence commits (optionally every mask above
  `commit_threshold`, LLaDA2's threshold decoding), plus edits: each step, a visible response
  token of the current block whose prediction differs from it with probability above
  `edit_threshold` is replaced. `backplay` takes an `edit_threshold` too: one decoder that
  remasks flagged tokens and edits.

Editing is the decoder's job (`decoder.edit_positions`); a policy only carries the thresholds.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from backplay_exp.samplers.select import select_top


@dataclass
class StepState:
    """What a policy sees at one step, for the rows decoded in it (b of them).

    Attributes:
        x: (b, T) current tokens, prompt included.
        committed: (b, T) bool, committed response tokens of the look-back window.
        p_err: (b, T) head error probabilities, or None (no head, or no remask due).
        due: (b,) bool, rows that remask this step (stride, block start, or final check).
        step: (b,) decoding steps each row has taken so far.
        last_remask: (b, T) long, the step at which each position was last remasked.
    """

    x: torch.Tensor
    committed: torch.Tensor
    p_err: torch.Tensor | None
    due: torch.Tensor
    step: torch.Tensor
    last_remask: torch.Tensor


def remask_candidates(
    committed: torch.Tensor, step: torch.Tensor, last_remask: torch.Tensor, memory_steps: int
) -> torch.Tensor:
    """Committed window tokens not remasked in the last `memory_steps` steps: (b, T) bool."""
    return committed & (step[:, None] - last_remask >= memory_steps)


def select_remask(
    err: torch.Tensor, candidates: torch.Tensor, threshold: float, max_remask: int
) -> torch.Tensor:
    """Up to `max_remask` candidates per row with the highest `err`, only those above threshold.

    Args:
        err: (b, T) error scores.
        candidates: (b, T) bool.
        threshold: τ; a token is remasked only if its score exceeds it.
        max_remask: K, the most tokens remasked per row per step.

    Returns:
        (b, T) bool.
    """
    eligible = candidates & (err > threshold)
    counts = torch.full(err.shape[:1], max_remask, dtype=torch.long, device=err.device)
    return select_top(err.float(), eligible, counts)


class ConfidencePolicy:
    """LLaDA's low-confidence remasking (BackPlay Alg. 3): commit the most confident masks."""

    name = "confidence"
    uses_head = False
    remasks = False
    block_buffer = 0
    check_block_start = False
    final_check = False
    # token editing (t2t_edit): None = never edit
    edit_threshold: float | None = None
    # threshold decoding: also commit every mask whose confidence exceeds this (None = only k)
    commit_threshold: float | None = None

    def commit_scores(
        self, confidence: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """(B, T) ranking of candidates: their confidence."""
        return confidence

    def remask_due(self, step: torch.Tensor, block_start: torch.Tensor) -> torch.Tensor:
        """(b,) rows that remask at this step: none."""
        return torch.zeros_like(step, dtype=torch.bool)

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


class BackplayPolicy(ConfidencePolicy):
    """Dynamic self-correction (BackPlay Alg. 1) with the correction head's error probability.

    Args:
        threshold: τ on the error probability `e = 1 - sigmoid(head)` (paper: 0.75; a
            calibration knob, see METHOD.md section 6).
        max_remask: K, most tokens remasked per step (paper: 2).
        stride: Remask only at steps `s mod stride == 0` (paper: 4).
        block_buffer: Look-back window = current block + this many previous blocks (paper: 4).
        memory_steps: Anti-repetition memory: a token remasked in the last this-many steps is
            not remasked again.
        check_block_start: Also judge at the first step of every block (the previous block's
            last commits are otherwise judged only if a stride step comes later). No extra NFE.
        final_check: Before a row stops (its finished block holds EoS, or it is the last
            block), run one more forward to judge that block (1 extra NFE per problem).
        edit_threshold: Also edit tokens as `t2t_edit` does (None = remask only).
        rollback: Also remask every committed window token right of the leftmost remasked one
            (the timeline rolled back to the first error: tokens decoded after it were
            conditioned on it) **[choice]**; False = only the K flagged tokens (Alg. 1).
    """

    name = "backplay"
    uses_head = True
    remasks = True

    def __init__(
        self,
        threshold: float,
        max_remask: int,
        stride: int,
        block_buffer: int,
        memory_steps: int,
        check_block_start: bool,
        final_check: bool,
        edit_threshold: float | None = None,
        rollback: bool = False,
    ) -> None:
        if stride < 1 or max_remask < 0 or block_buffer < 0 or memory_steps < 0:
            raise ValueError("remask: need stride >= 1 and non-negative K, buffer, memory")
        self.threshold, self.max_remask, self.stride = threshold, max_remask, stride
        self.block_buffer, self.memory_steps = block_buffer, memory_steps
        self.check_block_start, self.final_check = check_block_start, final_check
        self.edit_threshold = check_threshold("edit_threshold", edit_threshold)
        self.rollback = rollback
        if edit_threshold is not None:
            self.name = f"{self.name}+edit"

    def remask_due(self, step: torch.Tensor, block_start: torch.Tensor) -> torch.Tensor:
        """(b,) rows whose step is a multiple of the stride (or a block's first step)."""
        due = step % self.stride == 0
        return due | block_start if self.check_block_start else due

    def error_scores(
        self, state: StepState, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """(b, T) error probabilities: the head's."""
        assert state.p_err is not None, "the decoder computes p_err when a remask is due"
        return state.p_err

    def remask(
        self, state: StepState, generator: torch.Generator | None = None
    ) -> torch.Tensor | None:
        """Up to K window tokens with error score above τ, on the rows that are due."""
        if not state.due.any():
            return None
        err = self.error_scores(state, generator)
        cand = remask_candidates(state.committed, state.step, state.last_remask, self.memory_steps)
        cand &= state.due[:, None]
        remask = select_remask(err, cand, self.threshold, self.max_remask)
        return roll_back(remask, state.committed) if self.rollback else remask


def roll_back(remask: torch.Tensor, committed: torch.Tensor) -> torch.Tensor:
    """`remask` plus every committed token right of each row's leftmost remasked position.

    Args:
        remask: (b, T) bool, the flagged tokens to remask.
        committed: (b, T) bool, the committed tokens of the look-back window.

    Returns:
        (b, T) bool.
    """
    pos = torch.arange(remask.shape[1], device=remask.device)  # (T,)
    first = torch.where(remask.any(-1), remask.long().argmax(-1), remask.shape[1])  # (b,)
    return remask | (committed & (pos >= first[:, None]))


class RandomRemaskPolicy(BackplayPolicy):
    """`random` (BackPlay section 4.5): Alg. 1 with i.i.d. U(0, 1) error scores, no head."""

    name = "random"
    uses_head = False

    def error_scores(
        self, state: StepState, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """(b, T) i.i.d. uniform scores."""
        return torch.rand(state.x.shape, generator=generator, device=state.x.device)


class T2TEditPolicy(ConfidencePolicy):
    """LLaDA2.1's token editing (`t2t_edit`): commit masks, and edit visible tokens.

    Args:
        edit_threshold: A visible response token of the current block is replaced by the
            model's prediction when that differs from it with probability above this.
        commit_threshold: Also commit every mask of the block whose confidence exceeds this
            (LLaDA2's threshold decoding; at least the schedule's k per step); None = k only.
        mode: The preset's name (LLaDA2.1's S-Mode / Q-Mode), shown in the report.
    """

    name = "t2t_edit"

    def __init__(
        self, edit_threshold: float, commit_threshold: float | None = None, mode: str | None = None
    ) -> None:
        if edit_threshold is None:
            raise ValueError("t2t_edit: set remask.edit_threshold (a probability in [0, 1))")
        self.edit_threshold = check_threshold("edit_threshold", edit_threshold)
        self.commit_threshold = check_threshold("commit_threshold", commit_threshold)
        if mode:
            self.name = f"t2t_edit({mode})"


def check_threshold(name: str, value: float | None) -> float | None:
    """`value` if it is None or a probability in [0, 1); else a ValueError naming `name`."""
    if value is not None and not 0 <= value < 1:
        raise ValueError(f"remask.{name} must be in [0, 1) or null, got {value}")
    return value
