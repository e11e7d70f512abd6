"""The correction head c_φ: hidden states of the frozen backbone -> one logit per token.

METHOD.md section 3: input projection `d_in -> d_head` (identity if equal), `n_layers`
bidirectional transformer blocks (the project's one block, `transformer/block.py`), a final norm
and a linear layer to one logit; `sigmoid(logit)` is the probability that the token is correct,
`e = 1 - sigmoid` the error probability that the remasking policy thresholds. Paper: 2 layers on
SMDM-1B, 3 on LLaDA-8B.
"""

from __future__ import annotations

import torch
from torch import nn

from backplay_exp.transformer.block import Block, RMSNorm, positions_from_mask
from backplay_exp.transformer.config import TransformerConfig
from backplay_exp.transformer.kv_cache import KVCache
from backplay_exp.transformer.rotary import Rotary


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
        norm_eps: Epsilon of every RMSNorm.
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
        norm_eps: float = 1e-6,
    ) -> None:
        super().__init__()
        cfg = TransformerConfig(
            vocab_size=1,  # no embedding: the head reads hidden states
            d_model=d_head,
            n_layers=n_layers,
            n_heads=n_heads,
            n_kv_heads=n_heads,
            mlp_hidden=int(mlp_ratio * d_head),
            rope_theta=rope_base,
            norm_eps=norm_eps,
            conv_kernel=conv_kernel,
        )
        self.d_in = d_in
        self.rotary = Rotary(cfg.head_dim, rope_base)
        self.proj = nn.Identity() if d_in == d_head else nn.Linear(d_in, d_head, bias=False)
        self.in_norm = RMSNorm(d_head, norm_eps)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(n_layers))
        self.norm = RMSNorm(d_head, norm_eps)
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
        keep = None if attention_mask is None else attention_mask.bool()
        if keep is not None and bool(keep.all()):
            keep = None  # no padding: attention without a mask
        span = slice(None) if cache is None else cache.positions(hidden.shape[1])
        h = self.in_norm(self.proj(hidden[:, span].to(self.out.weight.dtype)))  # (B, n, d_head)
        if keep is None:
            positions = torch.arange(hidden.shape[1], device=hidden.device).expand(hidden.shape[:2])
        else:
            positions = positions_from_mask(keep)
        rope = self.rotary.tables(positions[:, span])
        for i, block in enumerate(self.blocks):
            h = block(h, rope, keep, None if cache is None else cache.layer(i))
        return self.out(self.norm(h)).squeeze(-1)  # (B, n)
