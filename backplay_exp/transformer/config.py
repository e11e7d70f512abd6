"""`TransformerConfig`: the shape and numerics of one model of the stack (see `model.py`)."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class TransformerConfig:
    """Shape and numerics of a bidirectional Llama-shaped transformer.

    Attributes:
        vocab_size: Rows of the embedding.
        d_model: Width D.
        n_layers: Blocks N.
        n_heads: Query heads (head dim = D / n_heads).
        n_kv_heads: Key/value heads (grouped-query attention when fewer than n_heads).
        mlp_hidden: SwiGLU width.
        rope_theta: Rotary frequency base.
        norm_eps: RMSNorm epsilon.
        qkv_bias: Biases on the q/k/v projections (Qwen2/Dream).
        tie_embeddings: The LM head reuses the embedding matrix.
        rope_fp32: Rotate q and k in float32 and cast back (LLaDA's `rope_full_precision`,
            SMDM); False rotates in the activation dtype with cos/sin cast to it (Qwen2).
        rope_table_dtype: Round the rotary tables to this dtype (SMDM: "bfloat16"); None = float32.
        pad_token_id: Embedding row that gets no gradient (`nn.Embedding(padding_idx=...)`, as
            Dream's published model is built); None for none.
        init_std: Std of the normal initialisation of a randomly initialised model.
        residual_init: Scale the random initialisation of the residual output projections
            (o_proj, down_proj) by 1 / sqrt(2 N) (GPT-2's; tiny's recipe).
        conv_kernel: Width of a depthwise convolution after attention in every block (tiny's
            local mixer, TOY.md); 0 = none (LLaDA, Dream, SMDM).
        max_positions: Rows of a learned absolute position embedding added to the token
            embedding (tiny); None = none.
        output_rows: Rows of the LM head; None = `vocab_size` (SMDM's has no row for its mask,
            the last id).
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
    rope_table_dtype: str | None = None
    pad_token_id: int | None = None
    init_std: float = 0.02
    residual_init: bool = False
    conv_kernel: int = 0
    max_positions: int | None = None
    output_rows: int | None = None

    def __post_init__(self) -> None:
        if self.d_model % self.n_heads or self.n_heads % self.n_kv_heads:
            raise ValueError(
                f"d_model={self.d_model}, n_heads={self.n_heads}, n_kv_heads={self.n_kv_heads}: "
                "d_model must be divisible by n_heads and n_heads by n_kv_heads"
            )
        dtype = self.rope_table_dtype
        if dtype is not None and not (
            isinstance(getattr(torch, dtype, None), torch.dtype)
            and getattr(torch, dtype).is_floating_point
        ):
            raise ValueError(f"rope_table_dtype={dtype!r} is not a torch float dtype")

    @property
    def head_dim(self) -> int:
        """Channels per attention head."""
        return self.d_model // self.n_heads

    @property
    def table_dtype(self) -> torch.dtype | None:
        """`rope_table_dtype` as a torch dtype."""
        return None if self.rope_table_dtype is None else getattr(torch, self.rope_table_dtype)
