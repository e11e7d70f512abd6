"""Keys and values of a decoding batch, so that a step recomputes only the positions that change.

METHOD.md section 6, cached decoding (the Fast-dLLM idea on a bidirectional DLM). One full
forward pass *records* every layer's post-rotary keys and values (and, for `tiny`'s conv mixer,
its inputs) and the tapped hidden state. Later forward passes compute only a *span* of positions
`[lo, hi)`: each layer attends to the recorded keys/values with the span's replaced by the fresh
ones, and the tapped hidden state outside the span is the recorded one.

With bidirectional attention this is exact only while no token has changed since the recording:
every position's keys depend, from the second layer on, on every other token. The decoder decides
what to record and when (its refresh rule, `samplers/decoder.py`); this object only stores and
splices. Rows: a recording covers the rows of its forward; a span forward may take a subset
(`rows`, indices into the recorded rows), as the decoder drops finished rows.
"""

from __future__ import annotations

import torch


def splice(recorded: torch.Tensor, fresh: torch.Tensor, lo: int, hi: int, dim: int) -> torch.Tensor:
    """`recorded` with positions [lo, hi) along `dim` replaced by `fresh`."""
    assert fresh.shape[dim] == hi - lo, "the fresh span does not fit [lo, hi)"
    after = recorded.narrow(dim, hi, recorded.shape[dim] - hi)
    return torch.cat([recorded.narrow(dim, 0, lo), fresh, after], dim)


class KVCache:
    """Per-layer recorded tensors of a batch, and the span the next forward computes.

    Use: `cache.record()` before a full forward (every layer stores what it computed), then
    `cache.span(lo, hi, rows)` before a forward that computes positions [lo, hi) only.
    """

    def __init__(self) -> None:
        self._layers: list[dict[str, torch.Tensor]] = []
        self._hidden: torch.Tensor | None = None
        self.recording = True
        self.lo, self.hi = 0, None
        self.rows: torch.Tensor | None = None

    @property
    def empty(self) -> bool:
        """Whether nothing has been recorded yet."""
        return self._hidden is None

    def record(self) -> KVCache:
        """Make the next forward a full one that records every layer (drops the old record)."""
        self._layers, self._hidden = [], None
        self.recording, self.lo, self.hi, self.rows = True, 0, None, None
        return self

    def span(self, lo: int, hi: int | None, rows: torch.Tensor | None = None) -> KVCache:
        """Make the next forward compute positions [lo, hi) of `rows`.

        Args:
            lo: First computed position.
            hi: End of the computed positions (None = the end of the sequence).
            rows: Indices into the recorded rows (None = all of them, in order).
        """
        if self.empty:
            raise RuntimeError("KVCache.span before anything was recorded")
        self.recording, self.lo, self.hi, self.rows = False, lo, hi, rows
        return self

    def positions(self, length: int) -> slice:
        """The positions the current forward computes, of a sequence of `length`."""
        return slice(self.lo, self._end(length))

    def _recorded(self, layer: int, name: str) -> torch.Tensor:
        value = self._layers[layer][name]
        return value if self.rows is None else value.index_select(0, self.rows)

    def layer_tensor(self, layer: int, name: str, fresh: torch.Tensor, dim: int) -> torch.Tensor:
        """Record `fresh` (full forward) or splice it into the recording (span forward).

        Args:
            layer: Block index (records are made in block order).
            name: What it is (`k`, `v`, `conv`), one record per name and layer.
            fresh: The tensor this forward computed, over its positions along `dim`.
            dim: The position dimension.

        Returns:
            The tensor over every position: `fresh` itself when recording.
        """
        if self.recording:
            if layer == len(self._layers):
                self._layers.append({})
            self._layers[layer][name] = fresh
            return fresh
        recorded = self._recorded(layer, name)
        return splice(recorded, fresh, self.lo, self._end(recorded.shape[dim]), dim)

    def layer(self, index: int) -> LayerCache:
        """The view a block uses (blocks record and read in order)."""
        return LayerCache(self, index)

    def tapped(self, hidden: torch.Tensor) -> torch.Tensor:
        """The tapped hidden state (b, T, D) at every position: record it, or splice the span's."""
        if self.recording:
            self._hidden = hidden
            return hidden
        assert self._hidden is not None
        recorded = self._hidden if self.rows is None else self._hidden.index_select(0, self.rows)
        return splice(recorded, hidden, self.lo, self._end(recorded.shape[1]), dim=1)

    def _end(self, length: int) -> int:
        return length if self.hi is None else self.hi


class LayerCache:
    """One block's view of a `KVCache`: what it records, and the positions it computes."""

    def __init__(self, cache: KVCache, index: int) -> None:
        self.cache, self.index = cache, index

    def __call__(self, name: str, fresh: torch.Tensor, dim: int) -> torch.Tensor:
        """`KVCache.layer_tensor` for this block."""
        return self.cache.layer_tensor(self.index, name, fresh, dim)

    def positions(self, length: int) -> slice:
        """The positions this forward computes."""
        return self.cache.positions(length)
