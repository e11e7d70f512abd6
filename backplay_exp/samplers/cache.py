"""The decoder's key/value cache and its refresh rule (`sampler.cache`; METHOD.md section 6).

Positions left of the look-back window (the prompt and every block before the window) can no
longer change: no policy commits, remasks or edits there. A step therefore needs fresh keys and
values only from the window's start onward:

- `none`: every step is a full forward pass.
- `prefix` (Fast-dLLM's prefix cache): the first step of each block is a full pass that records
  every layer's keys and values; the block's later steps recompute positions from the window's
  start to the end of the sequence and attend to the recorded keys/values of the positions left
  of the window.
- `dual` (Fast-dLLM's dual cache): the same, but later steps recompute only the window through
  the end of the current block; the still-masked suffix right of the block is read from the
  record too.

The record is refreshed at each block start: the window moves, and everything the block before
committed enters the cached part. With `refresh="judge"` it is also refreshed at every step where a
correction head judges the window (a remask is due): the head then reads the hidden states of an
exact forward, while the steps between judgements (commits only) use the cache. Measured on the toy
(README): with refresh at block starts only, BackPlay at k=2 lost 2.1 ± 0.7 points.

Bidirectional attention makes this an approximation: recorded keys of cached positions saw the
tokens of their time, not the ones committed since (Fast-dLLM reports < 1 point of accuracy for it;
this project measures it, README). For `backplay` the window spans `block_buffer` earlier blocks,
which are recomputed every step, since the head may remask them.
"""

from __future__ import annotations

import torch

from backplay_exp.backbones.kv_cache import KVCache

MODES = ("none", "prefix", "dual")
REFRESH = ("block", "judge")


class DecodeCache:
    """Which forward each step of a block runs: record, or a cached span (see module doc).

    Args:
        mode: `none`, `prefix` or `dual`.
        refresh: `block`: record at each block start; `judge`: also at every step where the
            head judges (see module doc).
    """

    def __init__(self, mode: str, refresh: str = "block") -> None:
        if mode not in MODES:
            raise ValueError(f"sampler.cache={mode!r} is not one of {', '.join(MODES)}")
        if refresh not in REFRESH:
            raise ValueError(
                f"sampler.cache_refresh={refresh!r} is not one of {', '.join(REFRESH)}"
            )
        self.mode, self.refresh = mode, refresh
        self.kv: KVCache | None = None if mode == "none" else KVCache()
        self._rows: torch.Tensor | None = None  # rows of the current record
        self.records = 0  # full passes that recorded (one per block and batch)

    def start_block(self) -> None:
        """The next step is the block's first: it records."""
        self._rows = None

    def step(
        self, rows: torch.Tensor, window_lo: int, block_hi: int, judging: bool = False
    ) -> KVCache | None:
        """The cache for this step's forward over `rows` (None: a plain full forward).

        Args:
            rows: (b,) ascending batch indices of the rows this step decodes.
            window_lo: First position of the look-back window (left of it: cached).
            block_hi: End of the current block (`dual` caches the positions after it).
            judging: A head judges this step's hidden states (refresh `judge` records).
        """
        if self.kv is None:
            return None
        if self._rows is None or (judging and self.refresh == "judge"):
            self._rows = rows
            self.records += 1
            return self.kv.record()
        if not bool(torch.isin(rows, self._rows).all()):
            raise RuntimeError("a row joined the block after its cache was recorded")
        same = len(rows) == len(self._rows)
        local = None if same else torch.searchsorted(self._rows, rows)  # (b,) into the record
        return self.kv.span(window_lo, block_hi if self.mode == "dual" else None, local)
