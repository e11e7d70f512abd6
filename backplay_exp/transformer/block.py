"""The block every model of the stack is built from, its norm, and positions under padding.

    h = h + o_proj(attention(rope(q_proj(n)), rope(k_proj(n)), v_proj(n)))   n = attn_norm(h)
    h = h + conv(conv_norm(h))                                  (tiny's local mixer, optional)
    h = h + down_proj(silu(gate_proj(m)) * up_proj(m))                       m = mlp_norm(h)

Pre-norm RMSNorm (statistics in float32), rotary positions (`rotary.py`), grouped-query
attention (query head h reads key/value head h // (n_heads / n_kv_heads)) with no mask but
padding. Fused projections of a published checkpoint (SMDM's `attn.attn`) are split when it is
loaded (a key map's concern), never a second block class.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from backplay_exp.transformer.config import TransformerConfig
from backplay_exp.transformer.kv_cache import LayerCache
from backplay_exp.transformer.rotary import Rotary


def positions_from_mask(keep: torch.Tensor) -> torch.Tensor:
    """Position ids (B, L) that skip left padding: `keep` (B, L) bool marks real tokens."""
    return (keep.long().cumsum(-1) - 1).clamp(min=0)


class RMSNorm(nn.Module):
    """Root-mean-square layer norm with a learned gain.

    The statistics are taken in float32 and the result is cast back before the gain is applied,
    as LLaDA's, Dream's (Qwen2's) and SMDM's norms do; in float32 it is the plain formula.
    """

    def __init__(self, dim: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Normalise the last dimension of `x` (any dtype)."""
        x32 = x.float()
        normed = x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * normed.to(x.dtype)


class Block(nn.Module):
    """One pre-norm block (see the module docstring)."""

    def __init__(self, cfg: TransformerConfig) -> None:
        super().__init__()
        d, hd = cfg.d_model, cfg.head_dim
        self.n_heads, self.n_kv_heads = cfg.n_heads, cfg.n_kv_heads
        self.rotary = Rotary(hd, cfg.rope_theta, cfg.rope_fp32, cfg.table_dtype)
        self.attn_norm = RMSNorm(d, cfg.norm_eps)
        self.q_proj = nn.Linear(d, cfg.n_heads * hd, bias=cfg.qkv_bias)
        self.k_proj = nn.Linear(d, cfg.n_kv_heads * hd, bias=cfg.qkv_bias)
        self.v_proj = nn.Linear(d, cfg.n_kv_heads * hd, bias=cfg.qkv_bias)
        self.o_proj = nn.Linear(cfg.n_heads * hd, d, bias=False)
        self.conv = None
        if cfg.conv_kernel > 0:
            self.conv_norm = RMSNorm(d, cfg.norm_eps)
            k = cfg.conv_kernel
            self.conv = nn.Conv1d(d, d, k, padding=k // 2, groups=d)
        self.mlp_norm = RMSNorm(d, cfg.norm_eps)
        self.gate_proj = nn.Linear(d, cfg.mlp_hidden, bias=False)
        self.up_proj = nn.Linear(d, cfg.mlp_hidden, bias=False)
        self.down_proj = nn.Linear(cfg.mlp_hidden, d, bias=False)

    def queries_keys(
        self, x: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Rotated queries (B, H, n, hd) and keys (B, Hkv, n, hd) of the normed input (B, n, D)."""
        b, n, _ = x.shape
        q = self.q_proj(x).view(b, n, self.n_heads, -1).transpose(1, 2)
        k = self.k_proj(x).view(b, n, self.n_kv_heads, -1).transpose(1, 2)
        return self.rotary(q, k, rope)

    def attend(
        self,
        x: torch.Tensor,
        rope: tuple[torch.Tensor, torch.Tensor],
        keep: torch.Tensor | None,
        cache: LayerCache | None = None,
    ) -> torch.Tensor:
        """Attention of the normed input `x` (B, n, D) over all L keys.

        `keep` (B, L) bool marks real keys (None: no padding); `cache` splices in the keys and
        values of the positions this forward does not compute (n < L), or records them.
        """
        b, n, _ = x.shape
        q, k = self.queries_keys(x, rope)
        v = self.v_proj(x).view(b, n, self.n_kv_heads, -1).transpose(1, 2)  # (B, Hkv, n, hd)
        if cache is not None:
            k, v = cache("k", k, dim=2), cache("v", v, dim=2)  # (B, Hkv, L, hd)
        mask = None if keep is None else keep[:, None, None, :]  # (B, 1, 1, L)
        out = F.scaled_dot_product_attention(
            q, k, v, attn_mask=mask, enable_gqa=self.n_kv_heads != self.n_heads
        )  # (B, H, n, hd)
        return self.o_proj(out.transpose(1, 2).reshape(b, n, -1))

    def mix(
        self, h: torch.Tensor, keep: torch.Tensor | None, cache: LayerCache | None = None
    ) -> torch.Tensor:
        """The depthwise convolution's residual (B, n, D) at the computed positions."""
        assert self.conv is not None
        x = self.conv_norm(h)  # (B, n, D)
        if keep is not None:  # padding must not leak into its neighbours
            span = slice(None) if cache is None else cache.positions(keep.shape[1])
            x = x * keep[:, span, None]
        if cache is not None:
            x = cache("conv", x, dim=1)  # (B, L, D): neighbours outside the computed positions
        mixed = self.conv(x.transpose(1, 2)).transpose(1, 2)  # (B, L, D)
        return mixed if cache is None else mixed[:, cache.positions(mixed.shape[1])]

    def forward(
        self,
        h: torch.Tensor,
        rope: tuple[torch.Tensor, torch.Tensor],
        keep: torch.Tensor | None,
        cache: LayerCache | None = None,
    ) -> torch.Tensor:
        """`h` (B, n, D) -> (B, n, D) at the computed positions (see `attend`)."""
        h = h + self.attend(self.attn_norm(h), rope, keep, cache)
        if self.conv is not None:
            h = h + self.mix(h, keep, cache)
        m = self.mlp_norm(h)
        return h + self.down_proj(F.silu(self.gate_proj(m)) * self.up_proj(m))
