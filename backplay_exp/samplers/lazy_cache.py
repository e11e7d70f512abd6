"""The lazy-window cache (`sampler/cache=lazy`): remasking at the cost of confidence decoding.

A remasker may change any token of its look-back window (`block_buffer` blocks before the current
one), so `prefix` and `dual` recompute that whole window at every step: 5 blocks for BackPlay's
paper preset where confidence decoding recomputes 1. This policy computes at each step only what
the step can use, and writes it back into the record (`KVCache` write-back):

- every step: the current block, and the window positions that hold a mask (a remask left it
  there; its proposal is needed to commit it again);
- a judging step (`Remasker.judges`) also every window position whose token changed since it
  was last computed (re-committed after a remask), so that the head never reads a hidden state
  computed for another token there; with `fresh_judge` the whole window through the block;
- a block's first step records the full canvas (as `dual`); the suffix right of the block is
  read from the record;
- with `tail_masks` > 0, so does every step at which the block has at most that many masks left
  in some row: a block's last commits (its least confident tokens, which may depend on context
  that read the block's newest tokens) and the judgements after it come from an exact forward.
  On the toy's cache-sensitive seed 0 this keeps BackPlay exact (docs/decoding.md); each record
  costs a full forward, and BackPlay's remasks bring a block back to its last commits often.
- with `readers` > 0, every step also recomputes the context positions (left of the block) whose
  first-layer attention puts more than that share, in some head, on tokens changed since the
  record (`samplers/readers.py`): those that read the block's newest tokens. On the toy's
  cache-sensitive seed 0 the default share keeps BackPlay within 0.4 point of the uncached
  decoder, at batch 1 and 256; where attention does not read the changes, it adds nothing but
  the first layer's scores against the changed keys.

The positions are the union over the step's rows, so a row is computed at least where it asked
(and a larger batch recomputes more: the outputs depend on the batch, as the share's calibration
at batch 1 allows for); when the window adds none, the forward is confidence decoding's
dual-cached one. With write-back the record holds, position by position,
what the last forward that computed it saw: the head reads the look-back window's hidden states
as of their last computation, stale by the commits since, never by a change of their own token.
Logits exist only at the computed positions. With `head_cache` the correction head runs the same
way (`samplers/head_cache.py`).
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING

import torch

from backplay_exp.samplers.cache import DualCache, Forward
from backplay_exp.samplers.head_cache import CachedHead
from backplay_exp.samplers.readers import ReaderWatch
from backplay_exp.samplers.state import DecodeState, Head

if TYPE_CHECKING:
    from backplay_exp.backbones.base import Backbone


class LazyWindowCache(DualCache):
    """Dual cache that recomputes the look-back window only where it changed (see module doc).

    Args:
        fresh_judge: At judging steps recompute the whole window through the block (the head
            reads this step's hidden states everywhere); False: only its changed positions.
        head_cache: Run the correction head on the positions whose hidden states changed since
            its last call, reading its other keys, values and outputs from its own record.
        refresh_on_judge: Record the full canvas at every judging step instead.
        tail_masks: Record the full canvas at every step where the current block has at most
            this many masks left in some row (0: never; k, the tokens per step: its last commits).
        readers: Also recompute the context positions that put more than this share of their
            first-layer attention on tokens changed since the record (0: never; the config's
            default, `sampler/cache=lazy`, is 0.1).
    """

    name = "lazy"

    def __init__(
        self,
        fresh_judge: bool = False,
        head_cache: bool = True,
        refresh_on_judge: bool = False,
        tail_masks: int = 0,
        readers: float = 0.0,
    ) -> None:
        if tail_masks < 0:
            raise ValueError(f"sampler.cache.tail_masks counts masks (>= 0), not {tail_masks}")
        if not 0 <= readers < 1:
            raise ValueError(
                f"sampler.cache.readers is a share of attention in [0, 1), not {readers}"
            )
        self.fresh_judge, self.head_cache, self.tail_masks = fresh_judge, head_cache, tail_masks
        self.readers = readers
        # results and reports tell the variants from plain `lazy`
        self.name = "lazy" + "+tail" * bool(tail_masks) + "+readers" * bool(readers)
        super().__init__(refresh_on_judge)

    def reset(self, backbone: Backbone | None = None) -> None:
        """A new batch of `backbone`: nothing recorded, nothing computed, nothing counted."""
        super().reset(backbone)
        self.steps = self.window_steps = 0  # cached steps, and those that computed window tokens
        if self.readers and backbone is not None and not hasattr(backbone, "first_queries_keys"):
            raise ValueError(
                f"sampler.cache.readers reads the first layer's attention, which "
                f"{type(backbone).__name__} does not expose (the backbones with native attention "
                "do: tiny, smdm_1b, llada_8b, dream_7b): use sampler/cache=none (a backbone "
                "without native attention takes no cache), or sampler.cache.readers=0 for a "
                "backbone of your own whose decode takes a cache"
            )
        self.backbone = backbone

    def release(self) -> None:
        """Free the record and what it was computed from."""
        super().release()
        self.seen: torch.Tensor | None = None  # (B, T) the token each position was computed with
        self.dirty: torch.Tensor | None = None  # (B, T) bool, computed since the head's last call
        self.step_rows: torch.Tensor | None = None  # (b,) the rows of the step in progress
        self.watch = ReaderWatch(self.readers) if self.readers else None  # nothing recorded

    def head(self, head: Head | None) -> Head | None:
        """The head, cached over this policy's record if `head_cache` and it takes a cache.

        A head whose forward takes no `cache` (one of the user's) runs uncached: every call a
        full pass, as with the other policies.
        """
        if not self.head_cache or head is None:
            return head
        forward = getattr(head, "forward", head)  # a module's own signature, not __call__'s
        takes_cache = "cache" in inspect.signature(forward).parameters
        return CachedHead(head, self) if takes_cache else head

    def step(self, state: DecodeState, rows: torch.Tensor, judging: bool = False) -> Forward:
        """Record, or compute the block and what the window needs (see module doc)."""
        x = state.x[rows]  # (b, T)
        if self.seen is None or self.dirty is None:
            self.seen = torch.full_like(state.x, -1)
            self.dirty = torch.zeros_like(state.x, dtype=torch.bool)
        self.step_rows = rows
        if self.records_now(judging) or self.at_tail(state, x):
            self.seen[rows], self.dirty[rows] = x, True
            if self.watch is not None:
                assert self.backbone is not None, "reset(backbone) before a step"
                self.watch.record(self.backbone, x, state.attn[rows], state.lo)
            return self.record(rows), (state.win_lo, state.hi)
        self.steps += 1
        local = self.local(rows)
        extra = self.stale(state, x, rows, local, judging)  # (n,)
        if judging and self.fresh_judge:  # the whole window, and the readers left of it
            whole = torch.arange(state.win_lo, state.lo, device=x.device)
            extra = torch.unique(torch.cat([extra, whole]))  # sorted
        self.window_steps += int(len(extra) > 0)
        if len(extra) == 0:  # the block alone: a dual-cached span
            kv, window = self.kv.span(state.lo, state.hi, local, True), (state.lo, state.hi)
        else:
            window = torch.cat([extra, torch.arange(state.lo, state.hi, device=x.device)])
            kv = self.kv.at(window, local, write_back=True)
        cols = torch.arange(*window, device=x.device) if isinstance(window, tuple) else window
        self.seen[rows[:, None], cols] = x[:, cols]
        self.dirty[rows[:, None], cols] = True
        return kv, window

    def at_tail(self, state: DecodeState, x: torch.Tensor) -> bool:
        """Whether some row of `x` (b, T) has at most `tail_masks` masks left in the block."""
        if not self.tail_masks:
            return False
        left = (x[:, state.lo : state.hi] == state.mask_id).sum(-1)  # (b,)
        return bool((left <= self.tail_masks).any())

    def stale(
        self,
        state: DecodeState,
        x: torch.Tensor,
        rows: torch.Tensor,
        local: torch.Tensor | None,
        judging: bool,
    ) -> torch.Tensor:
        """(n,) window positions left of the block that this step computes, of any row.

        `rows` (b,) are the step's rows, `local` their indices among the record's (`self.local`).

        Masks always; at judging steps also tokens that changed since they were computed; with
        `readers`, the context positions that read a change (`ReaderWatch.readers`).
        """
        assert self.seen is not None
        back = x[:, state.win_lo : state.lo]  # (b, W) the look-back blocks
        need = back == state.mask_id  # (b, W) remasked, not yet committed again
        if judging:
            need |= back != self.seen[rows, state.win_lo : state.lo]
        stale = need.any(0).nonzero().squeeze(1) + state.win_lo
        if self.watch is None:
            return stale
        assert self.backbone is not None, "reset(backbone) before a step"
        changes = (state.win_lo, state.hi)
        read = self.watch.readers(self.backbone, x, local, changes)
        return torch.unique(torch.cat([stale, read]))  # sorted
