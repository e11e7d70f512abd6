"""Rotary position embedding (RoPE), as LLaDA, Dream and SMDM's published code compute it.

All three rotate in the GPT-NeoX layout: channel j of a head turns with channel j + hd/2 by the
angle `position * theta ** (-2j / hd)`, the frequencies computed as `1 / theta ** (2j / hd)` in
float32 (so the tables are bit-identical to theirs). They differ in two places, the parameters
of `Rotary`:

- where the rotation is computed: LLaDA (`rope_full_precision`) and SMDM rotate in float32 and
  cast back; Qwen2/Dream rotate in the activation dtype with cos/sin cast to it (`fp32`);
- how the tables are stored: SMDM's `build_rope_cache` rounds cos/sin to bfloat16 even in a
  float32 model and computes with the rounded values (`table_dtype`).
"""

from __future__ import annotations

import torch


def rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotary embedding of `x` (B, H, L, hd): channel j turns with channel j + hd/2."""
    first, second = x.chunk(2, dim=-1)
    return x * cos + torch.cat((-second, first), dim=-1) * sin


class Rotary:
    """The rotary embedding of one model (see the module docstring).

    Args:
        head_dim: Channels per attention head (hd).
        theta: Frequency base.
        fp32: Rotate q and k in float32 and cast back; False: in the activation dtype.
        table_dtype: Round the cos/sin tables to this dtype, then use them in float32 (SMDM:
            bfloat16); None keeps them float32.
    """

    def __init__(
        self, head_dim: int, theta: float, fp32: bool = True, table_dtype: torch.dtype | None = None
    ) -> None:
        if head_dim % 2:
            raise ValueError(f"rotary embedding needs an even head dim, got {head_dim}")
        self.head_dim, self.theta, self.fp32, self.table_dtype = head_dim, theta, fp32, table_dtype

    def tables(self, positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Float32 cos/sin (B, 1, L, hd) of position ids (B, L): angles over both halves."""
        exponents = torch.arange(0, self.head_dim, 2, device=positions.device, dtype=torch.float32)
        inv_freq = 1.0 / (self.theta ** (exponents / self.head_dim))  # (hd/2,)
        angles = positions.float()[..., None] * inv_freq  # (B, L, hd/2)
        angles = torch.cat((angles, angles), dim=-1)[:, None]  # (B, 1, L, hd)
        cos, sin = angles.cos(), angles.sin()
        if self.table_dtype is not None:
            cos, sin = cos.to(self.table_dtype).float(), sin.to(self.table_dtype).float()
        return cos, sin

    def __call__(
        self, q: torch.Tensor, k: torch.Tensor, tables: tuple[torch.Tensor, torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Queries (B, H, n, hd) and keys (B, Hkv, n, hd) rotated by `tables` of their positions."""
        cos, sin = tables
        if self.fp32:
            return rotate(q.float(), cos, sin).to(q.dtype), rotate(k.float(), cos, sin).to(k.dtype)
        cos, sin = cos.to(q.dtype), sin.to(q.dtype)
        return rotate(q, cos, sin), rotate(k, cos, sin)
