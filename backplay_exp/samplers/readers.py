"""Which context positions read what a step changed: the lazy cache's `readers` refresh.

A cached step reads the keys and values of the context left of the block as the block's record
computed them. A context position whose attention falls on tokens committed (or remasked) since
then holds a state computed from tokens that are gone: on the toy's seed 0 the prompt's `?`
placeholders carry a running value this way, and a cache that keeps them stale costs BackPlay 32
points (docs/decoding.md). Which positions those are is a property of the model, so the policy
asks the model: the first layer's attention is the one attention computable without a forward
pass (its queries and keys depend on each position's token and position alone). At the record,
`ReaderWatch` keeps the first layer's queries and keys and each query's log-normaliser; at a
cached step it computes the new keys of the positions that changed since, and returns the context
positions that put more than `share` of their attention (in some head, in some row) on them. The
lazy cache recomputes those, at every layer.

The first layer is a proxy for the deeper ones: a model that routes a change through later
layers' attention alone is not caught.
"""

from __future__ import annotations

import math
from typing import Protocol

import torch


class FirstLayer(Protocol):
    """A backbone whose first block's queries and keys can be computed position by position."""

    def positions(self, tokens: torch.Tensor, keep: torch.Tensor | None) -> torch.Tensor:
        """Position ids (B, L) of `tokens` (B, L) with real tokens `keep` (None: all)."""
        ...

    def first_queries_keys(
        self, tokens: torch.Tensor, positions: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Rotated queries (B, H, n, hd) and keys (B, Hkv, n, hd) of tokens at positions (B, n)."""
        ...


def log_normalizer(q: torch.Tensor, k: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """(b, H, L) the logsumexp over the real keys of each query's scaled scores `q k^T / √hd`.

    Args:
        q: (b, H, L, hd) queries.
        k: (b, Hkv, L, hd) keys (query head h reads key head h // (H / Hkv)).
        keep: (b, L) bool, the real keys.
    """
    heads, hd = q.shape[1], q.shape[3]
    groups = heads // k.shape[1]
    out = []
    for g in range(k.shape[1]):  # one key head at a time: (b, H/Hkv, L, L) scores at most
        scores = q[:, g * groups : (g + 1) * groups] @ k[:, g : g + 1].transpose(-1, -2)
        scores = scores / math.sqrt(hd)
        out.append(scores.masked_fill(~keep[:, None, None, :], -math.inf).logsumexp(-1))
    return torch.cat(out, 1)


def attention_share(
    q: torch.Tensor,
    k_old: torch.Tensor,
    k_new: torch.Tensor,
    lse: torch.Tensor,
    changed: torch.Tensor,
) -> torch.Tensor:
    """(b, H, n) the share of each query's attention that falls on the changed keys now.

    The normaliser is updated from the record's: the changed keys' old terms leave it, their new
    terms enter it; every other key is as recorded.

    Args:
        q: (b, H, n, hd) queries.
        k_old: (b, Hkv, c, hd) the keys of c positions at the record.
        k_new: (b, Hkv, c, hd) their keys now.
        lse: (b, H, n) each query's log-normaliser at the record (`log_normalizer`).
        changed: (b, c) bool, the positions whose token changed in that row.
    """
    b, heads, n, hd = q.shape
    kv = k_old.shape[1]
    qg = q.reshape(b, kv, heads // kv, n, hd)  # (b, Hkv, g, n, hd)
    lse = lse.reshape(b, kv, heads // kv, n, 1)
    mask = changed[:, None, None, None, :]  # (b, 1, 1, 1, c)

    def mass(k: torch.Tensor) -> torch.Tensor:  # (b, Hkv, g, n): exp(score - lse) over changed
        scores = qg @ k[:, :, None].transpose(-1, -2) / math.sqrt(hd)  # (b, Hkv, g, n, c)
        return torch.where(mask, (scores - lse).exp(), 0.0).sum(-1)

    old, new = mass(k_old), mass(k_new)
    share = new / (1 - old + new).clamp(min=1e-12)
    return share.reshape(b, heads, n)


class ReaderWatch:
    """The first layer's attention at the record, and the context positions reading changes.

    Args:
        share: A context position is a reader when more than this share of its first-layer
            attention (in some head) falls on tokens changed since the record.
    """

    def __init__(self, share: float) -> None:
        self.share = share
        self.x: torch.Tensor | None = None  # (r, T) the tokens at the record

    def record(self, backbone: FirstLayer, x: torch.Tensor, keep: torch.Tensor) -> None:
        """Keep the first layer's queries, keys and log-normalisers of the record's rows.

        Args:
            backbone: The model.
            x: (r, T) the record's tokens.
            keep: (r, T) bool, real tokens (left padding is False).
        """
        self.x, self.keep = x.clone(), keep
        self.pos = backbone.positions(x, None if bool(keep.all()) else keep)  # (r, T)
        q, k = backbone.first_queries_keys(x, self.pos)
        self.q, self.k = q.float(), k.float()
        self.lse = log_normalizer(self.q, self.k, keep)  # (r, H, T)

    def readers(
        self,
        backbone: FirstLayer,
        x: torch.Tensor,
        local: torch.Tensor | None,
        lo: int,
        changes: tuple[int, int],
    ) -> torch.Tensor:
        """(n,) the context positions (left of `lo`) that read a change, in any row.

        Args:
            backbone: The model.
            x: (b, T) the step's tokens.
            local: (b,) the step's rows among the record's (None: all of them, in order).
            lo: The current block's start: positions left of it are the context.
            changes: [start, end) of the positions that may have changed since the record.
        """
        assert self.x is not None, "record before asking for readers"
        pick = slice(None) if local is None else local
        start, end = changes
        changed = x[:, start:end] != self.x[pick, start:end]  # (b, W)
        cols = changed.any(0).nonzero().squeeze(1)  # (c,)
        if len(cols) == 0:
            return cols
        at = cols + start
        _, k_new = backbone.first_queries_keys(x[:, at], self.pos[pick][:, at])
        share = attention_share(
            self.q[pick][:, :, :lo],
            self.k[pick][:, :, at],
            k_new.float(),
            self.lse[pick][:, :, :lo],
            changed[:, cols],
        )  # (b, H, lo)
        hot = (share.amax(1) > self.share) & self.keep[pick][:, :lo]  # (b, lo)
        return hot.any(0).nonzero().squeeze(1)
