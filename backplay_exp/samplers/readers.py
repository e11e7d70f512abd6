"""Which context positions read what a step changed: the lazy cache's `readers` refresh.

A cached step reads the keys and values of the context left of the block as the block's record
computed them. A context position whose attention falls on tokens committed (or remasked) since
then holds a state computed from tokens that are gone: on the toy's seed 0 the prompt's `?`
placeholders carry a running value this way, and a cache that keeps them stale costs BackPlay 32
points (docs/decoding.md). Which positions those are is a property of the model, so the policy
asks the model: the first layer's attention is the one attention computable without a forward
pass (its queries and keys depend on each position's token and position alone). At the record,
`ReaderWatch` keeps the first layer's queries and keys and each query's log-normaliser; at a
cached step it computes the keys of the positions whose token changed since the last step, moves
each query's running attention on the changed positions by them, and returns the context
positions that put more than `share` of their attention (in some head, in some row) on what
changed since the record. The lazy cache recomputes those, at every layer.

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
    """(b, H, n) the logsumexp over the real keys of each query's scaled scores `q k^T / √hd`.

    Args:
        q: (b, H, n, hd) queries.
        k: (b, Hkv, L, hd) keys (query head h reads key head h // (H / Hkv)).
        keep: (b, L) bool, the real keys.
    """
    heads, hd = q.shape[1], q.shape[3]
    groups = heads // k.shape[1]
    out = []
    for g in range(k.shape[1]):  # one key head at a time: (b, H/Hkv, n, L) scores at most
        scores = q[:, g * groups : (g + 1) * groups] @ k[:, g : g + 1].transpose(-1, -2)
        scores = scores / math.sqrt(hd)
        out.append(scores.masked_fill(~keep[:, None, None, :], -math.inf).logsumexp(-1))
    return torch.cat(out, 1)


def key_mass(
    q: torch.Tensor, k: torch.Tensor, lse: torch.Tensor, weight: torch.Tensor
) -> torch.Tensor:
    """(b, H, n, m) each query's attention on c keys, weighted m ways.

    Column j is `Σ_c weight[:, c, j] · exp(q·k_c / √hd - lse)`.

    Args:
        q: (b, H, n, hd) queries.
        k: (b, Hkv, c, hd) keys (query head h reads key head h // (H / Hkv)).
        lse: (b, H, n) each query's log-normaliser (`log_normalizer`).
        weight: (b, c, m) each key's weights in its row (0 leaves it out).
    """
    b, heads, n, hd = q.shape
    kv = k.shape[1]
    qg = q.reshape(b, kv, heads // kv, n, hd)  # (b, Hkv, g, n, hd), a view
    scores = qg @ k[:, :, None].transpose(-1, -2) / math.sqrt(hd)  # (b, Hkv, g, n, c)
    lse = lse.reshape(b, kv, heads // kv, n, 1)
    mass = (scores - lse).exp() @ weight[:, None, None].to(scores.dtype)  # (b, Hkv, g, n, m)
    return mass.reshape(b, heads, n, -1)


def attention_share(old: torch.Tensor, new: torch.Tensor) -> torch.Tensor:
    """The share of attention on the changed keys now, from their masses (any shape, the same).

    `old` is their mass with the record's keys, `new` with today's, both relative to the record's
    normaliser: the changed keys' old terms leave it, their new terms enter it, every other key
    is as recorded.
    """
    return new / (1 - old + new).clamp(min=1e-12)


class ReaderWatch:
    """The first layer's attention at the record, and the context positions reading changes.

    Args:
        share: A context position is a reader when more than this share of its first-layer
            attention (in some head) falls on tokens changed since the record.
    """

    def __init__(self, share: float) -> None:
        self.share = share
        self.x: torch.Tensor | None = None  # (r, T) the tokens at the record

    def record(
        self, backbone: FirstLayer, x: torch.Tensor, keep: torch.Tensor, context: int
    ) -> None:
        """Keep the first layer's queries, keys and log-normalisers of the record's rows.

        Args:
            backbone: The model.
            x: (r, T) the record's tokens.
            keep: (r, T) bool, real tokens (left padding is False).
            context: The current block's start: the positions left of it are the context,
                whose queries are watched.
        """
        self.x, self.now, self.keep, self.context = x.clone(), x.clone(), keep, context
        self.pos = backbone.positions(x, None if bool(keep.all()) else keep)  # (r, T)
        q, self.k = (t.float() for t in backbone.first_queries_keys(x, self.pos))
        self.q = q[:, :, :context]  # (r, H, lo, hd)
        self.lse = log_normalizer(self.q, self.k, keep)  # (r, H, lo)
        # each query's attention on the positions changed since the record: the record's keys
        # there (`old`) and today's (`new`), both over the record's normaliser
        self.mass = self.lse.new_zeros(*self.lse.shape, 2)  # (r, H, lo, [old, new])

    def readers(
        self,
        backbone: FirstLayer,
        x: torch.Tensor,
        local: torch.Tensor | None,
        changes: tuple[int, int],
    ) -> torch.Tensor:
        """(n,) the context positions that read a change, in any row.

        Only the positions whose token changed since the last call are computed: their terms
        move the running masses (a position changed back to its recorded token leaves them).

        Args:
            backbone: The model.
            x: (b, T) the step's tokens.
            local: (b,) the step's rows among the record's (None: all of them, in order).
            changes: [start, end) of the positions that may have changed since the record.
        """
        assert self.x is not None, "record before asking for readers"
        pick = slice(None) if local is None else local
        start, end = changes
        before, now = self.now[pick, start:end], x[:, start:end]  # (b, W)
        cols = (now != before).any(0).nonzero().squeeze(1)  # (c,)
        if len(cols):
            at = cols + start
            rec = self.x[pick][:, at]  # (b, c)
            was = (before[:, cols] != rec).float()  # counted as changed until now
            is_ = (now[:, cols] != rec).float()  # ... from now on
            tokens = torch.cat([before[:, cols], now[:, cols]], 1)  # (b, 2c)
            pos = self.pos[pick][:, at].repeat(1, 2)
            _, k = backbone.first_queries_keys(tokens, pos)
            keys = torch.cat([self.k[pick][:, :, at], k.float()], 2)  # (b, Hkv, 3c, hd)
            zero = torch.zeros_like(was)
            weight = torch.stack(  # (b, 3c, 2): [old, new] over [record, before, now]
                [torch.cat([is_ - was, zero, zero], 1), torch.cat([zero, -was, is_], 1)], -1
            )
            self.mass[pick] += key_mass(self.q[pick], keys, self.lse[pick], weight)
            self.now[pick, start:end] = now
        share = attention_share(*self.mass[pick].unbind(-1))  # (b, H, lo)
        hot = (share.amax(1) > self.share) & self.keep[pick][:, : self.context]  # (b, lo)
        return hot.any(0).nonzero().squeeze(1)
