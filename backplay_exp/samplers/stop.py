"""The stopping rule (config group `sampler/stop`): when a block, and a row, is finished.

METHOD.md section 6. A row keeps decoding its block while the block (or anything left of it)
holds a mask, or while the editor changed it in the last step. Three rules end it:

- **Step cap** (the termination guarantee): a block takes at most `max_steps_factor` times the
  commit rule's plain steps; past it nothing is remasked or edited, so only commits are left.
- **Final check**: a remasker that asks for it (`remask.final_check`) gets one more forward to
  judge a finished block before its row stops (the block holds EoS, or it is the last one),
  and again after every such check that remasked.
- **Early stop** (`early_stop`, BackPlay's; LLaDA's reference has none): after a block that holds
  EoS, the row stops and the rest of its canvas is EoS.
"""

from __future__ import annotations

import torch

from backplay_exp.samplers.state import DecodeState


class StopRule:
    """When blocks and rows finish (see module doc).

    Args:
        early_stop: Stop a row after a block that contains EoS.
        max_steps_factor: A block takes at most this many times its plain steps.
    """

    def __init__(self, early_stop: bool = True, max_steps_factor: int = 4) -> None:
        if max_steps_factor < 1:
            raise ValueError(f"sampler.stop.max_steps_factor must be >= 1, got {max_steps_factor}")
        self.early_stop, self.max_steps_factor = early_stop, max_steps_factor
        self.max_block_steps = 0

    def bind(self, plain_steps: int) -> StopRule:
        """This rule with its cap for a commit rule whose blocks take `plain_steps` steps."""
        bound = StopRule(self.early_stop, self.max_steps_factor)
        bound.max_block_steps = self.max_steps_factor * plain_steps
        return bound

    def rows(self, state: DecodeState, eos_id: int, final_check: bool) -> torch.Tensor | None:
        """(b,) the rows that take another step in the current block, or None: it is done.

        Sets `state.judge` (rows whose step is a final check) and `state.uncapped`.
        """
        assert state.in_block is not None and state.checked is not None
        x, lo, hi = state.x, state.lo, state.hi
        uncapped = state.in_block < self.max_block_steps  # (B,)
        has_mask = (x[:, :hi] == state.mask_id).any(-1)  # (B,)
        stopping = ~has_mask & ~state.done
        if hi < x.shape[1]:  # before the last block, a row stops only at EoS
            stopping &= (x[:, lo:hi] == eos_id).any(-1)
        judge = stopping & ~state.checked & uncapped & final_check
        assert state.unsettled is not None
        active = (has_mask & ~state.done) | judge | (state.unsettled & ~state.done & uncapped)
        if not active.any():
            return None
        state.judge, state.uncapped = judge, uncapped
        return active.nonzero(as_tuple=True)[0]

    def due(self, state: DecodeState, rows: torch.Tensor, wanted: torch.Tensor) -> torch.Tensor:
        """(b,) rows that remask: wanted (b,) by the remasker or judged, under the step cap."""
        assert state.judge is not None and state.uncapped is not None
        return (wanted | state.judge[rows]) & state.uncapped[rows]

    def end_block(self, state: DecodeState, eos_id: int) -> None:
        """Early stop: a row whose finished block holds EoS is done, its canvas filled with EoS."""
        if not self.early_stop:
            return
        stop = ~state.done & (state.x[:, state.lo : state.hi] == eos_id).any(-1)  # (B,)
        tail = state.x[:, state.hi :]
        state.x[:, state.hi :] = torch.where(stop[:, None], eos_id, tail)
        state.done |= stop
