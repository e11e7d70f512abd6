"""The embedded `tiny` DLM: a small bidirectional transformer with LLaDA's block shape.

Pre-norm blocks of RMSNorm -> rotary self-attention (no causal mask) -> optional depthwise
1-D convolution (a local mixer; TOY.md: it lets a sub-million-parameter model learn chained
arithmetic in CPU minutes) -> SwiGLU MLP. Positions come from the attention mask, so a
left-padded prompt sees the same positions as the unpadded one (batching equivalence).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedTokenizerBase

from backplay_exp.backbones.base import Backbone, BackboneOutput


class RMSNorm(nn.Module):
    """Root-mean-square layer norm with a learned gain."""

    def __init__(self, dim: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Normalise the last dimension of `x`."""
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def rotary_tables(
    positions: torch.Tensor, head_dim: int, base: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Cos/sin tables for rotary embeddings: `positions` (B, L) -> two (B, 1, L, head_dim/2)."""
    inv_freq = base ** (-torch.arange(0, head_dim, 2, device=positions.device) / head_dim)
    angles = positions.float()[..., None] * inv_freq  # (B, L, hd/2)
    return angles.cos()[:, None], angles.sin()[:, None]


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate pairs of channels of `x` (B, H, L, hd) by the position angles."""
    x1, x2 = x[..., 0::2], x[..., 1::2]
    return torch.stack((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1).flatten(-2)


class Block(nn.Module):
    """One pre-norm block: attention, optional depthwise conv, SwiGLU MLP; each residual."""

    def __init__(self, dim: int, n_heads: int, mlp_ratio: float, conv_kernel: int) -> None:
        super().__init__()
        if dim % n_heads:
            raise ValueError(f"d_model={dim} is not divisible by n_heads={n_heads}")
        self.n_heads = n_heads
        self.attn_norm = RMSNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim, bias=False)
        self.attn_out = nn.Linear(dim, dim, bias=False)
        self.conv = None
        if conv_kernel > 0:
            self.conv_norm = RMSNorm(dim)
            self.conv = nn.Conv1d(dim, dim, conv_kernel, padding=conv_kernel // 2, groups=dim)
        hidden = int(mlp_ratio * dim)
        self.mlp_norm = RMSNorm(dim)
        self.gate_up = nn.Linear(dim, 2 * hidden, bias=False)
        self.down = nn.Linear(hidden, dim, bias=False)

    def forward(
        self, h: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor], keep: torch.Tensor
    ) -> torch.Tensor:
        """`h` (B, L, D); `keep` (B, L) bool marks real (non-padding) tokens."""
        b, n, d = h.shape
        q, k, v = self.qkv(self.attn_norm(h)).view(b, n, 3, self.n_heads, -1).unbind(2)
        q, k, v = (t.transpose(1, 2) for t in (q, k, v))  # (B, H, L, hd)
        q, k = apply_rotary(q, *rope), apply_rotary(k, *rope)
        attn = F.scaled_dot_product_attention(q, k, v, attn_mask=keep[:, None, None, :])
        h = h + self.attn_out(attn.transpose(1, 2).reshape(b, n, d))
        if self.conv is not None:
            x = self.conv_norm(h) * keep[..., None]  # padding must not leak into the conv
            h = h + self.conv(x.transpose(1, 2)).transpose(1, 2)
        gate, up = self.gate_up(self.mlp_norm(h)).chunk(2, dim=-1)
        return h + self.down(F.silu(gate) * up)


class TinyBackbone(Backbone):
    """The in-repo DLM used by the embedded default, the tests and the quickstart.

    Args:
        tokenizer: Its tokenizer (the char-level one for the toy benchmark).
        d_model: Hidden size D.
        n_layers: Number of blocks N.
        n_heads: Attention heads per block.
        mlp_ratio: SwiGLU hidden size as a multiple of D.
        conv_kernel: Width of the depthwise conv mixer in every block (0 disables it).
        max_len: Longest sequence (for the learned position embedding).
        learned_pos: Add a learned absolute position embedding to the rotary positions.
        rope_base: Rotary frequency base.
        init_std: Std of the embedding and linear initialisation (TOY.md: small, 0.02).
        tap_layer: Which entry of [embeddings, block_1, ..., block_N] is the `hidden` output.
    """

    name = "tiny"

    def __init__(
        self,
        tokenizer: PreTrainedTokenizerBase,
        d_model: int,
        n_layers: int,
        n_heads: int,
        mlp_ratio: float,
        conv_kernel: int,
        max_len: int,
        learned_pos: bool,
        rope_base: float,
        init_std: float,
        tap_layer: int,
    ) -> None:
        super().__init__(tokenizer)
        if not -(n_layers + 1) <= tap_layer <= n_layers:
            raise ValueError(f"tap_layer={tap_layer} is outside [-{n_layers + 1}, {n_layers}]")
        self.hidden_size, self.max_len, self.tap_layer = d_model, max_len, tap_layer
        self.rope_base = rope_base
        self.embed = nn.Embedding(len(tokenizer), d_model)
        self.pos_embed = nn.Embedding(max_len, d_model) if learned_pos else None
        self.blocks = nn.ModuleList(
            Block(d_model, n_heads, mlp_ratio, conv_kernel) for _ in range(n_layers)
        )
        self.norm = RMSNorm(d_model)
        self.lm_head = nn.Linear(d_model, len(tokenizer), bias=False)
        self._init_weights(init_std, n_layers)

    def _init_weights(self, std: float, n_layers: int) -> None:
        for name, p in self.named_parameters():
            if p.ndim == 2:
                # residual output projections scaled down with depth (GPT-2 style)
                scale = (
                    1 / math.sqrt(2 * n_layers)
                    if name.endswith(("attn_out.weight", "down.weight"))
                    else 1
                )
                nn.init.normal_(p, std=std * scale)

    def forward(
        self, tokens: torch.Tensor, attention_mask: torch.Tensor | None = None
    ) -> BackboneOutput:
        """Logits (B, L, V) and the tapped hidden state (B, L, D) of `tokens` (B, L)."""
        assert tokens.ndim == 2, "tokens must be (B, L)"
        if tokens.shape[1] > self.max_len:
            raise ValueError(
                f"sequence length {tokens.shape[1]} exceeds backbone.max_len={self.max_len}"
            )
        keep = (
            torch.ones_like(tokens, dtype=torch.bool)
            if attention_mask is None
            else attention_mask.bool()
        )
        positions = (keep.long().cumsum(-1) - 1).clamp(min=0)  # (B, L): left padding ignored
        h = self.embed(tokens)  # (B, L, D)
        if self.pos_embed is not None:
            h = h + self.pos_embed(positions)
        rope = rotary_tables(positions, h.shape[-1] // self.blocks[0].n_heads, self.rope_base)
        states = [h]
        for block in self.blocks:
            h = block(h, rope, keep)
            states.append(h)
        return BackboneOutput(logits=self.lm_head(self.norm(h)), hidden=states[self.tap_layer])
