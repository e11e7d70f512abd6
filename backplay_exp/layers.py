"""Transformer pieces shared by the `tiny` backbone and the correction head.

LLaDA's block shape: pre-norm RMSNorm -> rotary self-attention without a causal mask -> optional
depthwise 1-D convolution (a local mixer) -> SwiGLU MLP, each residual. Positions come from the
attention mask (`positions_from_mask`), so left padding does not shift them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

if TYPE_CHECKING:
    from backplay_exp.backbones.kv_cache import LayerCache


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


def rotary_tables(
    positions: torch.Tensor,
    head_dim: int,
    base: float,
    table_dtype: torch.dtype | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Cos/sin tables for rotary embeddings: `positions` (B, L) -> two float32 (B, 1, L, hd/2).

    Args:
        positions: Position ids (B, L).
        head_dim: Channels per attention head (hd).
        base: Rotary frequency base.
        table_dtype: None: float32 tables with frequencies `base ** (-2i / hd)` (tiny's). A dtype
            (SMDM: bfloat16): lit-gpt's `build_rope_cache` recipe, as SMDM's published code
            runs it: frequencies `1 / base ** (2i / hd)` in float32, cos/sin rounded to
            `table_dtype`, then used in float32 arithmetic (returned as float32).
    """
    if table_dtype is None:
        inv_freq = base ** (-torch.arange(0, head_dim, 2, device=positions.device) / head_dim)
    else:  # the same frequencies up to float32 rounding, which bf16 rounding can expose
        inv_freq = 1.0 / base ** (torch.arange(0, head_dim, 2, device=positions.device) / head_dim)
    angles = positions.float()[..., None] * inv_freq  # (B, L, hd/2)
    cos, sin = angles.cos()[:, None], angles.sin()[:, None]
    if table_dtype is not None:
        cos, sin = cos.to(table_dtype).float(), sin.to(table_dtype).float()
    return cos, sin


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate pairs of channels of `x` (B, H, L, hd) by the position angles."""
    x1, x2 = x[..., 0::2], x[..., 1::2]
    rotated = torch.stack((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1).flatten(-2)
    return rotated.to(x.dtype)  # float32 tables must not promote a bf16 model's queries


class Block(nn.Module):
    """One pre-norm block: attention, optional depthwise conv, SwiGLU MLP; each residual."""

    def __init__(
        self, dim: int, n_heads: int, mlp_ratio: float, conv_kernel: int, norm_eps: float = 1e-6
    ) -> None:
        super().__init__()
        if dim % n_heads:
            raise ValueError(f"d_model={dim} is not divisible by n_heads={n_heads}")
        self.n_heads = n_heads
        self.attn_norm = RMSNorm(dim, norm_eps)
        self.qkv = nn.Linear(dim, 3 * dim, bias=False)
        self.attn_out = nn.Linear(dim, dim, bias=False)
        self.conv = None
        if conv_kernel > 0:
            self.conv_norm = RMSNorm(dim, norm_eps)
            self.conv = nn.Conv1d(dim, dim, conv_kernel, padding=conv_kernel // 2, groups=dim)
        hidden = int(mlp_ratio * dim)
        self.mlp_norm = RMSNorm(dim, norm_eps)
        self.gate_up = nn.Linear(dim, 2 * hidden, bias=False)
        self.down = nn.Linear(hidden, dim, bias=False)

    def forward(
        self,
        h: torch.Tensor,
        rope: tuple[torch.Tensor, torch.Tensor],
        keep: torch.Tensor,
        cache: LayerCache | None = None,
    ) -> torch.Tensor:
        """One block over the positions this forward computes.

        Args:
            h: (B, n, D) at the computed positions: all L, or a cached span of them.
            rope: Cos/sin tables of the computed positions.
            keep: (B, L) bool, real (non-padding) tokens of the whole sequence.
            cache: This block's view of a `KVCache` (records, or splices in the keys, values
                and conv inputs of the positions not computed); None = no cache.
        """
        b, n, d = h.shape
        q, k, v = self.qkv(self.attn_norm(h)).view(b, n, 3, self.n_heads, -1).unbind(2)
        q, k, v = (t.transpose(1, 2) for t in (q, k, v))  # (B, H, n, hd)
        q, k = apply_rotary(q, *rope), apply_rotary(k, *rope)
        if cache is not None:
            k, v = cache("k", k, dim=2), cache("v", v, dim=2)  # (B, H, L, hd)
        attn = F.scaled_dot_product_attention(q, k, v, attn_mask=keep[:, None, None, :])
        h = h + self.attn_out(attn.transpose(1, 2).reshape(b, n, d))
        if self.conv is not None:
            span = slice(None) if cache is None else cache.positions(keep.shape[1])
            x = self.conv_norm(h) * keep[:, span, None]  # padding must not leak into the conv
            if cache is not None:
                x = cache("conv", x, dim=1)  # (B, L, D): neighbours outside the span
            mixed = self.conv(x.transpose(1, 2)).transpose(1, 2)
            h = h + (mixed if cache is None else mixed[:, span])
        gate, up = self.gate_up(self.mlp_norm(h)).chunk(2, dim=-1)
        return h + self.down(F.silu(gate) * up)
