"""The correction head c_φ: hidden states of the frozen backbone -> one logit per token.

METHOD.md section 3: input projection `d_in -> d_head` (identity if equal), `n_layers`
bidirectional transformer blocks, a final norm and a linear layer to one logit;
`sigmoid(logit)` is the probability that the token is correct, `e = 1 - sigmoid` the error
probability that the remasking policy thresholds. Paper: 2 layers on SMDM-1B, 3 on LLaDA-8B.
"""

from __future__ import annotations

import torch
from torch import nn

from backplay_exp.backbones.kv_cache import KVCache
from backplay_exp.layers import Block, RMSNorm, positions_from_mask, rotary_tables


class CorrectionHead(nn.Module):
    """Bidirectional transformer head over the backbone's tapped hidden states.

    Args:
        d_in: Hidden size of the backbone's tapped layer (filled in from the backbone).
        d_head: Width of the head's blocks.
        n_layers: Number of blocks.
        n_heads: Attention heads per block.
        mlp_ratio: SwiGLU hidden size as a multiple of `d_head`.
        conv_kernel: Depthwise conv mixer width in each block (0 disables it).
        rope_base: Rotary frequency base.
    """

    def __init__(
        self,
        d_in: int,
        d_head: int,
        n_layers: int,
        n_heads: int,
        mlp_ratio: float,
        conv_kernel: int,
        rope_base: float,
    ) -> None:
        super().__init__()
        self.d_in, self.rope_base, self.n_heads = d_in, rope_base, n_heads
        self.proj = nn.Identity() if d_in == d_head else nn.Linear(d_in, d_head, bias=False)
        self.in_norm = RMSNorm(d_head)
        self.blocks = nn.ModuleList(
            Block(d_head, n_heads, mlp_ratio, conv_kernel) for _ in range(n_layers)
        )
        self.norm = RMSNorm(d_head)
        self.out = nn.Linear(d_head, 1)

    def forward(
        self,
        hidden: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        cache: KVCache | None = None,
    ) -> torch.Tensor:
        """`hidden` (B, L, d_in), `attention_mask` (B, L) bool -> logits (B, L).

        With a `cache` (decoding, `samplers/head_cache.py`) the forward records its keys and
        values, or computes only the cache's positions (n of them) and returns (B, n).
        """
        assert hidden.ndim == 3, "hidden must be (B, L, D)"
        keep = (
            torch.ones(hidden.shape[:2], dtype=torch.bool, device=hidden.device)
            if attention_mask is None
            else attention_mask.bool()
        )
        span = slice(None) if cache is None else cache.positions(hidden.shape[1])
        h = self.in_norm(self.proj(hidden[:, span].to(self.out.weight.dtype)))  # (B, n, d_head)
        positions = positions_from_mask(keep)[:, span]  # (B, n)
        rope = rotary_tables(positions, h.shape[-1] // self.n_heads, self.rope_base)
        for i, block in enumerate(self.blocks):
            h = block(h, rope, keep, None if cache is None else cache.layer(i))
        return self.out(self.norm(h)).squeeze(-1)  # (B, n)
