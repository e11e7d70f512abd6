"""Keys and values of a decoding batch, so that a step recomputes only the positions that change.

METHOD.md section 6, cached decoding (the Fast-dLLM idea on a bidirectional DLM). One full
forward pass *records* every layer's post-rotary keys and values (and, for `tiny`'s conv mixer,
its inputs) and the tapped hidden state. Later forward passes compute only some positions: a
contiguous *span* `[lo, hi)` (`span`) or any sorted set of them (`at`). Each layer attends to
the recorded keys/values with the computed positions' replaced by the fresh ones, and the tapped
hidden state elsewhere is the recorded one. With `write_back` the fresh tensors are also stored
in the record, which then holds, position by position, what the last forward computing that
position saw.

With bidirectional attention this is exact only while no token has changed since the recording:
every position's keys depend, from the second layer on, on every other token. The cache policy
(`samplers/cache.py`) decides what to record and compute; this object only stores and splices.
Rows: a recording covers the rows of its forward; a later forward may take a subset (`rows`,
indices into the recorded rows), as the decoder drops finished rows.
"""

from __future__ import annotations

import torch

# the positions a forward computes: a contiguous [lo, hi) (hi None = the end) or a sorted (n,)
# long tensor of positions
Cols = slice | torch.Tensor


def splice(recorded: torch.Tensor, fresh: torch.Tensor, lo: int, hi: int, dim: int) -> torch.Tensor:
    """`recorded` with positions [lo, hi) along `dim` replaced by `fresh`."""
    assert fresh.shape[dim] == hi - lo, "the fresh span does not fit [lo, hi)"
    after = recorded.narrow(dim, hi, recorded.shape[dim] - hi)
    return torch.cat([recorded.narrow(dim, 0, lo), fresh, after], dim)


class KVCache:
    """Per-layer recorded tensors of a batch, and the positions the next forward computes.

    Use: `cache.record()` before a full forward (every layer stores what it computed), then
    `cache.span(lo, hi, rows)` or `cache.at(cols, rows)` before a forward that computes only
    those positions.
    """

    def __init__(self) -> None:
        self._layers: list[dict[str, torch.Tensor]] = []
        self._hidden: torch.Tensor | None = None
        self.record()

    @property
    def empty(self) -> bool:
        """Whether nothing has been recorded yet."""
        return not self._layers and self._hidden is None

    @property
    def sparse(self) -> bool:
        """Whether the next forward computes a set of positions rather than a span."""
        return isinstance(self.cols, torch.Tensor)

    @property
    def lo(self) -> int:
        """The first computed position."""
        return int(self.cols[0]) if self.sparse else self.cols.start

    def record(self) -> KVCache:
        """Make the next forward a full one that records every layer (drops the old record)."""
        self._layers, self._hidden = [], None
        self.recording, self.cols, self.rows, self.write_back = True, slice(0, None), None, False
        return self

    def span(
        self, lo: int, hi: int | None, rows: torch.Tensor | None = None, write_back: bool = False
    ) -> KVCache:
        """Make the next forward compute positions [lo, hi) of `rows`.

        Args:
            lo: First computed position.
            hi: End of the computed positions (None = the end of the sequence).
            rows: Indices into the recorded rows (None = all of them, in order).
            write_back: Also store what the forward computes into the record.
        """
        return self._compute(slice(lo, hi), rows, write_back)

    def at(
        self, cols: torch.Tensor, rows: torch.Tensor | None = None, write_back: bool = False
    ) -> KVCache:
        """Make the next forward compute the sorted positions `cols` (n,) of `rows` (as `span`)."""
        assert cols.ndim == 1 and len(cols) > 0, "cols must be a non-empty (n,) tensor"
        return self._compute(cols, rows, write_back)

    def _compute(self, cols: Cols, rows: torch.Tensor | None, write_back: bool) -> KVCache:
        if self.empty:
            raise RuntimeError("KVCache.span before anything was recorded")
        self.recording, self.cols, self.rows, self.write_back = False, cols, rows, write_back
        return self

    def include(self, positions: torch.Tensor) -> None:
        """Widen the computed positions of the next forward to hold `positions` (m,) too."""
        if self.recording:
            return
        if self.sparse:
            self.cols = torch.unique(torch.cat([self.cols, positions]))  # sorted
        else:
            self.cols = slice(min(self.cols.start, int(positions.min())), self.cols.stop)

    def positions(self, length: int) -> slice | torch.Tensor:
        """The positions the current forward computes, of a sequence of `length`."""
        if self.sparse:
            return self.cols
        return slice(self.cols.start, length if self.cols.stop is None else self.cols.stop)

    def computed(self, n: int, device: torch.device) -> torch.Tensor:
        """(n,) the `n` positions the current forward computes, as a tensor."""
        if self.sparse:
            return self.cols.to(device)
        return torch.arange(self.lo, self.lo + n, device=device)

    def _splice(self, recorded: torch.Tensor, fresh: torch.Tensor, dim: int) -> torch.Tensor:
        """The record of this forward's rows with the computed positions replaced by `fresh`."""
        own = self.rows is not None  # a gathered copy is ours to write into
        if own:
            recorded = recorded.index_select(0, self.rows)
        if self.sparse:  # with write-back on every row: into the record itself
            if own or self.write_back:
                return recorded.index_copy_(dim, self.cols, fresh)
            return recorded.index_copy(dim, self.cols, fresh)
        cols = self.positions(recorded.shape[dim])
        if own or self.write_back:  # in place: no copy of the whole record
            recorded.narrow(dim, cols.start, cols.stop - cols.start).copy_(fresh)
            return recorded
        return splice(recorded, fresh, cols.start, cols.stop, dim)

    def _stored(self, record: torch.Tensor, spliced: torch.Tensor) -> torch.Tensor:
        """The record with this forward's rows replaced by `spliced` (write-back)."""
        if self.rows is None:
            return spliced  # every recorded row: the spliced tensor is the new record
        return record.index_copy_(0, self.rows, spliced)  # the record is ours alone

    def layer_tensor(self, layer: int, name: str, fresh: torch.Tensor, dim: int) -> torch.Tensor:
        """Record `fresh` (full forward) or splice it into the recording (other forwards).

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
        spliced = self._splice(self._layers[layer][name], fresh, dim)
        if self.write_back:
            self._layers[layer][name] = self._stored(self._layers[layer][name], spliced)
        return spliced

    def layer(self, index: int) -> LayerCache:
        """The view a block uses (blocks record and read in order)."""
        return LayerCache(self, index)

    def tapped(self, hidden: torch.Tensor) -> torch.Tensor:
        """The tapped hidden state (b, T, D) at every position: record it, or splice the span's."""
        if self.recording:
            self._hidden = hidden
            return hidden
        assert self._hidden is not None
        spliced = self._splice(self._hidden, hidden, dim=1)
        if self.write_back:
            self._hidden = self._stored(self._hidden, spliced)
        return spliced


class LayerCache:
    """One block's view of a `KVCache`: what it records, and the positions it computes."""

    def __init__(self, cache: KVCache, index: int) -> None:
        self.cache, self.index = cache, index

    def __call__(self, name: str, fresh: torch.Tensor, dim: int) -> torch.Tensor:
        """`KVCache.layer_tensor` for this block."""
        return self.cache.layer_tensor(self.index, name, fresh, dim)

    def positions(self, length: int) -> slice | torch.Tensor:
        """The positions this forward computes."""
        return self.cache.positions(length)
