"""The correction head over a lazy cache: it recomputes only where its input changed.

BackPlay's head is a small bidirectional transformer over the backbone's hidden states of the
whole sequence (prompt included), run at every judging step. With `sampler/cache=lazy` most of
those hidden states are read from the record and did not change since the head's last call, so
the head, like the backbone, records its own keys, values and outputs (a `KVCache`) and then
computes only the positions whose hidden state the backbone recomputed since (the policy's
`dirty` flags). Its outputs elsewhere are the recorded ones: stale, as the backbone's, by the
changes at other positions since they were computed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from backplay_exp.samplers.state import Head
from backplay_exp.transformer.kv_cache import KVCache

if TYPE_CHECKING:
    from backplay_exp.samplers.lazy_cache import LazyWindowCache


class CachedHead:
    """`head` run over its own record; a `Head` to the remasker (see module doc).

    Args:
        head: The correction head; its forward takes a `cache` (`CorrectionHead`).
        policy: The lazy cache whose rows and `dirty` flags say what changed.
    """

    def __init__(self, head: Head, policy: LazyWindowCache) -> None:
        self.inner, self.policy = head, policy
        self.kv = KVCache()
        self.rows: torch.Tensor | None = None  # (r,) the rows of the head's record
        self.out: torch.Tensor | None = None  # (B, T) its logits as last computed

    def __call__(self, hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Correctness logits (b, T) of the step's rows from their hidden states (b, T, D)."""
        rows, dirty = self.policy.step_rows, self.policy.dirty
        assert rows is not None and dirty is not None, "the head runs after a cached step"
        changed = dirty[rows]  # (b, T)
        if self.out is None:
            self.out = hidden.new_zeros(dirty.shape, dtype=torch.float32)
        if (
            self.rows is None
            or not bool(torch.isin(rows, self.rows).all())
            or changed.all(-1).any()
        ):
            self.rows = rows
            fresh = self.inner(hidden, attention_mask, self.kv.record()).float()
            self.out[rows] = fresh
        elif bool(changed.any()):
            cols = changed.any(0).nonzero().squeeze(1)  # (n,)
            local = None if len(rows) == len(self.rows) else torch.searchsorted(self.rows, rows)
            kv = self.kv.at(cols, local, write_back=True)
            self.out[rows[:, None], cols] = self.inner(hidden, attention_mask, kv).float()
        dirty[rows] = False
        return self.out[rows]
