"""The cache policy (config group `sampler/cache`): what each step recomputes, and when.

METHOD.md section 6: which span of positions a step's forward recomputes, and when the record of
keys and values is refreshed.

Positions left of the look-back window (the prompt and every block before the window) can no
longer change: no remasker, commit or edit touches them. A step therefore needs fresh keys and
values only from the window's start onward:

- `NoCache` (`none`): every step is a full forward pass.
- `PrefixCache` (`prefix`, Fast-dLLM's prefix cache): the first step of each block is a full pass
  that records every layer's keys and values; the block's later steps recompute positions from
  the window's start to the end of the sequence and attend to the recorded keys/values of the
  positions left of the window.
- `DualCache` (`dual`, Fast-dLLM's dual cache): the same, but later steps recompute only the
  window through the end of the current block; the still-masked suffix is read from the record.

With `refresh_on_judge` the record is also refreshed at every step where a correction head judges
(`Remasker.judges`): the head then reads the hidden states of an exact forward, while the steps
between judgements (commits only) use the cache. Measured on the toy (README): refreshing at
block starts only, BackPlay at k=2 lost 2.1 ± 0.7 points.

Bidirectional attention makes this an approximation: recorded keys of cached positions saw the
tokens of their time, not the ones committed since (Fast-dLLM reports < 1 point of accuracy for
it). A remasker's window spans `block_buffer` earlier blocks, which are recomputed every step.

A cache policy is one class: `reset` (a new batch, of the backbone it will decode with),
`start_block`, `step`, which returns the `KVCache` that the step's forward records into or reads
from (None: a plain forward) and the positions that get logits, and `release` (after the batch:
a record holds every layer's keys and values).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from backplay_exp.samplers.state import DecodeState, Head
from backplay_exp.transformer.kv_cache import KVCache

if TYPE_CHECKING:
    from backplay_exp.backbones.base import Backbone

# what a step's forward gets: the cache (None: a plain forward) and the positions that get logits,
# [lo, hi) or a sorted (n,) tensor of them (the LM head, the softmax and the proposals run there)
Forward = tuple[KVCache | None, tuple[int, int] | torch.Tensor]


class NoCache:
    """Every step is a full forward pass."""

    name = "none"
    # classifier-free guidance runs a second, prompt-masked pass that no record holds
    supports_guidance = True
    refresh_on_judge = False

    def __init__(self) -> None:
        self.reset()

    def reset(self, backbone: Backbone | None = None) -> None:
        """A new batch (of `backbone`, for a policy that reads the model): nothing recorded yet."""
        self.records = 0  # full passes that recorded (one per block and batch, at least)

    def release(self) -> None:
        """The batch is done: free what it recorded (its counts stay)."""

    def start_block(self) -> None:
        """The next step is the block's first."""

    def head(self, head: Head | None) -> Head | None:
        """The correction head as this policy runs it (itself: every call a full pass)."""
        return head

    def step(self, state: DecodeState, rows: torch.Tensor, judging: bool = False) -> Forward:
        """The cache for this step's forward over `rows`, and the positions that get logits.

        Args:
            state: The batch (its current block `lo`, `hi` and window start `win_lo`).
            rows: (b,) ascending batch indices of the rows this step decodes.
            judging: The remasker judges the look-back window this step (`Remasker.judges`).

        Returns:
            None (a plain full forward) and the window through the block, `[win_lo, hi)`.
        """
        return None, (state.win_lo, state.hi)


class PrefixCache(NoCache):
    """Fast-dLLM's prefix cache (see module doc).

    Args:
        refresh_on_judge: Also record at every step where the head judges.
    """

    name = "prefix"
    supports_guidance = False

    def __init__(self, refresh_on_judge: bool = False) -> None:
        self.refresh_on_judge = refresh_on_judge
        super().__init__()

    def reset(self, backbone: Backbone | None = None) -> None:
        """A new batch: a fresh, empty record."""
        super().reset(backbone)
        self.release()

    def release(self) -> None:
        """Free the record."""
        self.kv = KVCache()
        self._rows: torch.Tensor | None = None  # rows of the current record

    def start_block(self) -> None:
        """The next step is the block's first: it records."""
        self._rows = None

    def span_end(self, block_hi: int) -> int | None:
        """End of the positions a cached step recomputes (None: the end of the sequence)."""
        return None

    def step(self, state: DecodeState, rows: torch.Tensor, judging: bool = False) -> Forward:
        """Record, or compute the span from the window's start (the rest read from the record).

        A block's first step records, and with `refresh_on_judge` so does every judged step.
        """
        window = (state.win_lo, state.hi)
        if self.records_now(judging):
            return self.record(rows), window
        # write-back changes nothing that a later step reads (it recomputes the span again) but
        # lets each layer write the span into its record in place instead of splicing a copy
        end = self.span_end(state.hi)
        return self.kv.span(state.win_lo, end, self.local(rows), write_back=True), window

    def records_now(self, judging: bool) -> bool:
        """Whether this step's forward records: a block's first, or (refresh) a judged one."""
        return self._rows is None or (judging and self.refresh_on_judge)

    def record(self, rows: torch.Tensor) -> KVCache:
        """The cache, set to record a full forward of `rows` (b,)."""
        self._rows = rows
        self.records += 1
        return self.kv.record()

    def local(self, rows: torch.Tensor) -> torch.Tensor | None:
        """(b,) indices of `rows` into the recorded rows (None: all of them, in order)."""
        assert self._rows is not None
        if not bool(torch.isin(rows, self._rows).all()):
            raise RuntimeError("a row joined the block after its cache was recorded")
        return None if len(rows) == len(self._rows) else torch.searchsorted(self._rows, rows)


class DualCache(PrefixCache):
    """Fast-dLLM's dual cache: the masked suffix right of the block is read from the record too."""

    name = "dual"

    def span_end(self, block_hi: int) -> int | None:
        """A cached step recomputes the window through the end of the current block."""
        return block_hi
