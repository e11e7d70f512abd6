"""The bidirectional Llama-shaped transformer that LLaDA and Dream both are, written here.

LLaDA-8B (an OLMo "llama" block without a causal mask) and Dream-7B (Qwen2.5 without a causal
mask) compute the same thing, block by block:

    h = h + o_proj(attention(rope(q_proj(n)), rope(k_proj(n)), v_proj(n)))   n = attn_norm(h)
    h = h + down_proj(silu(gate_proj(m)) * up_proj(m))                       m = mlp_norm(h)

with pre-norm RMSNorm (statistics in float32), rotary positions in the GPT-NeoX layout
(channel j rotates with channel j + head_dim/2), grouped-query attention (query head h reads
key/value head h // (n_heads / n_kv_heads)) and no attention mask but padding. What differs is a
config (`TransformerConfig`): q/k/v biases (Dream), where the rotation is computed (LLaDA in
float32, Qwen2 in the activation dtype), the norm eps, and the published weight names
(`backbones/llada.py`, `backbones/dream.py` map them onto this module's names).

Outputs follow the Hugging Face convention both published models use: `states` are
`[embeddings, block_1, ..., block_N]`; the LM head reads `norm(block_N)`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from backplay_exp.backbones.kv_cache import KVCache, LayerCache
from backplay_exp.layers import RMSNorm


@dataclass(frozen=True)
class TransformerConfig:
    """Shape and numerics of a bidirectional Llama-shaped DLM.

    Attributes:
        vocab_size: Rows of the embedding and of the LM head.
        d_model: Width D.
        n_layers: Blocks N.
        n_heads: Query heads (head dim = D / n_heads).
        n_kv_heads: Key/value heads (grouped-query attention when fewer than n_heads).
        mlp_hidden: SwiGLU width.
        rope_theta: Rotary frequency base.
        norm_eps: RMSNorm epsilon.
        qkv_bias: Biases on the q/k/v projections (Qwen2/Dream).
        tie_embeddings: The LM head reuses the embedding matrix.
        rope_fp32: Rotate q and k in float32 and cast back (LLaDA's `rope_full_precision`);
            False rotates in the activation dtype with cos/sin cast to it (Qwen2).
        pad_token_id: Embedding row that gets no gradient (`nn.Embedding(padding_idx=...)`, as
            Dream's published model is built); None for none.
        init_std: Std of the normal initialisation of a randomly initialised model.
    """

    vocab_size: int
    d_model: int
    n_layers: int
    n_heads: int
    n_kv_heads: int
    mlp_hidden: int
    rope_theta: float
    norm_eps: float
    qkv_bias: bool = False
    tie_embeddings: bool = False
    rope_fp32: bool = True
    pad_token_id: int | None = None
    init_std: float = 0.02

    def __post_init__(self) -> None:
        if self.d_model % self.n_heads or self.n_heads % self.n_kv_heads:
            raise ValueError(
                f"d_model={self.d_model}, n_heads={self.n_heads}, n_kv_heads={self.n_kv_heads}: "
                "d_model must be divisible by n_heads and n_heads by n_kv_heads"
            )

    @property
    def head_dim(self) -> int:
        """Channels per attention head."""
        return self.d_model // self.n_heads


def rope_tables(
    positions: torch.Tensor, head_dim: int, theta: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Float32 cos/sin (B, 1, L, head_dim) of the NeoX layout: angles repeated over both halves.

    Computed as both published models do (`1 / theta ** (2j / hd)`, times the position, in
    float32), so the tables are bit-identical to theirs.
    """
    exponents = torch.arange(0, head_dim, 2, device=positions.device, dtype=torch.float32)
    inv_freq = 1.0 / (theta ** (exponents / head_dim))  # (hd/2,)
    angles = positions.float()[..., None] * inv_freq  # (B, L, hd/2)
    angles = torch.cat((angles, angles), dim=-1)[:, None]  # (B, 1, L, hd)
    return angles.cos(), angles.sin()


def rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotary embedding of `x` (B, H, L, hd): channel j turns with channel j + hd/2."""
    first, second = x.chunk(2, dim=-1)
    return x * cos + torch.cat((-second, first), dim=-1) * sin


class DecoderBlock(nn.Module):
    """One pre-norm block: grouped-query bidirectional attention, then a SwiGLU MLP."""

    def __init__(self, cfg: TransformerConfig) -> None:
        super().__init__()
        d, hd = cfg.d_model, cfg.head_dim
        self.n_heads, self.n_kv_heads, self.rope_fp32 = cfg.n_heads, cfg.n_kv_heads, cfg.rope_fp32
        self.attn_norm = RMSNorm(d, cfg.norm_eps)
        self.q_proj = nn.Linear(d, cfg.n_heads * hd, bias=cfg.qkv_bias)
        self.k_proj = nn.Linear(d, cfg.n_kv_heads * hd, bias=cfg.qkv_bias)
        self.v_proj = nn.Linear(d, cfg.n_kv_heads * hd, bias=cfg.qkv_bias)
        self.o_proj = nn.Linear(cfg.n_heads * hd, d, bias=False)
        self.mlp_norm = RMSNorm(d, cfg.norm_eps)
        self.gate_proj = nn.Linear(d, cfg.mlp_hidden, bias=False)
        self.up_proj = nn.Linear(d, cfg.mlp_hidden, bias=False)
        self.down_proj = nn.Linear(cfg.mlp_hidden, d, bias=False)

    def attend(
        self,
        x: torch.Tensor,
        rope: tuple[torch.Tensor, torch.Tensor],
        key_mask: torch.Tensor | None,
        cache: LayerCache | None = None,
    ) -> torch.Tensor:
        """Attention of the normed input `x` (B, n, D) over all L keys.

        `key_mask` (B, 1, 1, L) bool or None; `cache` splices in the keys and values of the
        positions this forward does not compute (n < L), or records them.
        """
        b, n, _ = x.shape
        q = self.q_proj(x).view(b, n, self.n_heads, -1).transpose(1, 2)  # (B, H, n, hd)
        k = self.k_proj(x).view(b, n, self.n_kv_heads, -1).transpose(1, 2)  # (B, Hkv, n, hd)
        v = self.v_proj(x).view(b, n, self.n_kv_heads, -1).transpose(1, 2)
        cos, sin = rope
        if self.rope_fp32:
            q, k = (rotate(t.float(), cos, sin).to(t.dtype) for t in (q, k))
        else:
            cos, sin = cos.to(q.dtype), sin.to(q.dtype)
            q, k = rotate(q, cos, sin), rotate(k, cos, sin)
        if cache is not None:
            k, v = cache("k", k, dim=2), cache("v", v, dim=2)  # (B, Hkv, L, hd)
        out = F.scaled_dot_product_attention(
            q, k, v, attn_mask=key_mask, enable_gqa=self.n_kv_heads != self.n_heads
        )  # (B, H, n, hd)
        return self.o_proj(out.transpose(1, 2).reshape(b, n, -1))

    def forward(
        self,
        h: torch.Tensor,
        rope: tuple[torch.Tensor, torch.Tensor],
        key_mask: torch.Tensor | None,
        cache: LayerCache | None = None,
    ) -> torch.Tensor:
        """`h` (B, n, D) -> (B, n, D) at the computed positions (see `attend`)."""
        h = h + self.attend(self.attn_norm(h), rope, key_mask, cache)
        m = self.mlp_norm(h)
        return h + self.down_proj(F.silu(self.gate_proj(m)) * self.up_proj(m))


class DLMTransformer(nn.Module):
    """Embedding, N `DecoderBlock`s, final norm and LM head (see the module docstring).

    Args:
        cfg: The shape and numerics.
    """

    def __init__(self, cfg: TransformerConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Embedding(cfg.vocab_size, cfg.d_model, padding_idx=cfg.pad_token_id)
        self.blocks = nn.ModuleList(DecoderBlock(cfg) for _ in range(cfg.n_layers))
        self.norm = RMSNorm(cfg.d_model, cfg.norm_eps)
        self.lm_head = nn.Linear(cfg.d_model, cfg.vocab_size, bias=False)
        self.tie_weights()
        self.gradient_checkpointing = False

    def tie_weights(self) -> None:
        """Point the LM head at the embedding matrix, if the config ties them."""
        if self.cfg.tie_embeddings:
            self.lm_head.weight = self.embed.weight

    def reset_parameters(self) -> None:
        """Random initialisation: normal(0, init_std) weights, zero biases, unit norm gains."""
        for module in self.modules():
            if isinstance(module, nn.Linear | nn.Embedding):
                nn.init.normal_(module.weight, std=self.cfg.init_std)
            if isinstance(module, nn.Linear) and module.bias is not None:
                nn.init.zeros_(module.bias)
            if isinstance(module, RMSNorm):
                nn.init.ones_(module.weight)

    def states(
        self,
        tokens: torch.Tensor,
        positions: torch.Tensor,
        keep: torch.Tensor | None,
        n_blocks: int,
        cache: KVCache | None = None,
    ) -> list[torch.Tensor]:
        """`[embeddings, block_1, ..., block_n_blocks]`, each (B, n, D).

        Args:
            tokens: (B, L) ids.
            positions: (B, L) rotary positions.
            keep: (B, L) bool, False at padding keys (never attended to); None = no padding.
            n_blocks: How many blocks to run (later blocks are skipped).
            cache: Records every block's keys and values, or restricts the forward to its
                span of n positions (`KVCache`); None = all L positions, nothing kept.
        """
        span = slice(None) if cache is None else cache.positions(tokens.shape[1])
        h = self.embed(tokens[:, span])  # (B, n, D)
        rope = rope_tables(positions[:, span], self.cfg.head_dim, self.cfg.rope_theta)
        key_mask = None if keep is None else keep[:, None, None, :]  # (B, 1, 1, L)
        states = [h]
        for i, block in enumerate(self.blocks[:n_blocks]):
            layer = None if cache is None else cache.layer(i)
            if self.gradient_checkpointing and self.training and torch.is_grad_enabled():
                h = checkpoint(block, h, rope, key_mask, layer, use_reentrant=False)
            else:
                h = block(h, rope, key_mask, layer)
            states.append(h)
        return states
