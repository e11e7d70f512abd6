"""The remasker (config group `remask`): which committed tokens go back under the mask, and when.

METHOD.md section 6. A remasker says at which steps a row is due (`due`), whether a correction
head judges the step (`judges`: the cache policy may record for it), and which committed tokens
of the look-back window a due row sends back under the mask (`select`). The decoder
(`decoder.py`) applies the choice; nothing else about a step is the remasker's.

- `NoRemask` (`confidence`, `random_order`, `t2t_*`): never remasks.
- `HeadRemasker` (`backplay`, Alg. 1): at steps `s mod stride == 0`, up to `max_remask`
  committed window tokens whose head error probability exceeds `threshold`, skipping tokens
  remasked in the last `memory_steps` steps; optionally rolled back to the first of them.
- `RandomRemasker` (`random`, section 4.5): `HeadRemasker` with i.i.d. U(0, 1) error scores.
"""

from __future__ import annotations

import torch

from backplay_exp.samplers.select import select_top
from backplay_exp.samplers.state import Head, Step


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


class NoRemask:
    """Never remask: what is committed stays (LLaDA's decoders, token editing)."""

    name = "none"
    uses_head = False
    # look-back window in blocks before the current one (what a step may change)
    block_buffer = 0
    # judge a finished block once more before its row stops (the stop rule runs it)
    final_check = False

    def due(self, step: torch.Tensor, block_start: torch.Tensor) -> torch.Tensor:
        """(b,) bool, rows that may remask this step: none."""
        return torch.zeros_like(step, dtype=torch.bool)

    def judges(self, due: torch.Tensor) -> bool:
        """Whether a correction head reads this step's hidden states (given the due rows)."""
        return False

    def select(
        self, step: Step, head: Head | None, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """(b, T) bool, the tokens to remask: none."""
        return torch.zeros_like(step.masked)


class HeadRemasker(NoRemask):
    """Dynamic self-correction (BackPlay Alg. 1) with the correction head's error probability.

    Args:
        threshold: τ on the error probability `e = 1 - sigmoid(head)` (paper: 0.75; a
            calibration knob, see METHOD.md section 6).
        max_remask: K, most tokens remasked per step (paper: 2).
        stride: Remask only at steps `s mod stride == 0` (paper: 4).
        block_buffer: Look-back window = current block + this many previous blocks (paper: 4).
        memory_steps: Anti-repetition memory: a token remasked in the last this-many steps is
            not remasked again.
        check_block_start: Also judge at the first step of every block. No extra NFE.
        final_check: Before a row stops (its finished block holds EoS, or it is the last
            block), run one more forward to judge that block (1 extra NFE per problem).
        rollback: Also remask every committed window token right of the leftmost remasked one
            (the timeline rolled back to the first error) **[choice]**; False = Alg. 1.
    """

    name = "backplay"
    uses_head = True

    def __init__(
        self,
        threshold: float,
        max_remask: int,
        stride: int,
        block_buffer: int,
        memory_steps: int,
        check_block_start: bool,
        final_check: bool,
        rollback: bool = False,
    ) -> None:
        if stride < 1 or max_remask < 0 or block_buffer < 0 or memory_steps < 0:
            raise ValueError("remask: need stride >= 1 and non-negative K, buffer, memory")
        self.threshold, self.max_remask, self.stride = threshold, max_remask, stride
        self.block_buffer, self.memory_steps = block_buffer, memory_steps
        self.check_block_start, self.final_check = check_block_start, final_check
        self.rollback = rollback

    def due(self, step: torch.Tensor, block_start: torch.Tensor) -> torch.Tensor:
        """(b,) rows whose step is a multiple of the stride (or a block's first step)."""
        due = step % self.stride == 0
        return due | block_start if self.check_block_start else due

    def judges(self, due: torch.Tensor) -> bool:
        """The head judges whenever a row is due."""
        return self.uses_head and bool(due.any())

    def error_scores(
        self, step: Step, head: Head | None, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """(b, T) error probabilities: the head's, on this step's hidden states."""
        assert head is not None, "the decoder checks that a head is given"
        return 1 - torch.sigmoid(head(step.hidden, step.attn).float())

    def select(
        self, step: Step, head: Head | None, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Up to K window tokens with error score above τ, on the rows that are due."""
        if not step.due.any():
            return torch.zeros_like(step.masked)
        err = self.error_scores(step, head, generator)
        cand = remask_candidates(step.committed, step.step, step.last_remask, self.memory_steps)
        remask = select_remask(err, cand & step.due[:, None], self.threshold, self.max_remask)
        return roll_back(remask, step.committed) if self.rollback else remask


class RandomRemasker(HeadRemasker):
    """`random` (BackPlay section 4.5): Alg. 1 with i.i.d. U(0, 1) error scores, no head."""

    name = "random"
    uses_head = False

    def error_scores(
        self, step: Step, head: Head | None, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """(b, T) i.i.d. uniform scores."""
        return torch.rand(step.x.shape, generator=generator, device=step.x.device)
