"""The embedded `tiny` DLM: a small bidirectional transformer with LLaDA's block shape.

The project's transformer (`transformer/model.py`) at a small size, with two things the
published models do not have: a depthwise 1-D convolution after attention in every block (a
local mixer; TOY.md: it lets a sub-million-parameter model learn chained arithmetic in CPU
minutes) and a learned absolute position embedding. Positions come from the attention mask, so
a left-padded prompt sees the same positions as the unpadded one (batching equivalence).
SMDM-1B (`smdm.py`) is this class at SMDM's shape, without either.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers import PreTrainedTokenizerBase

from backplay_exp.backbones.base import check_tap_layer
from backplay_exp.backbones.stack import StackBackbone
from backplay_exp.transformer.block import positions_from_mask
from backplay_exp.transformer.config import TransformerConfig
from backplay_exp.transformer.kv_cache import KVCache
from backplay_exp.transformer.model import DLMTransformer


class TinyBackbone(StackBackbone):
    """The in-repo DLM used by the embedded default, the tests and the quickstart.

    Args:
        tokenizer: Its tokenizer (the char-level one for the toy benchmark).
        d_model: Hidden size D.
        n_layers: Number of blocks N.
        n_heads: Attention heads per block.
        mlp_ratio: SwiGLU hidden size as a multiple of D.
        conv_kernel: Width of the depthwise conv mixer in every block (0 disables it).
        max_len: Longest sequence (the learned position embedding's rows).
        learned_pos: Add a learned absolute position embedding to the rotary positions.
        rope_base: Rotary frequency base.
        init_std: Std of the embedding and linear initialisation (TOY.md: small, 0.02); the
            residual output projections are scaled down with depth (GPT-2 style).
        tap_layer: Index into `[embeddings, block_1, ..., norm(block_N)]` of `hidden`.
        n_kv_heads: Key/value heads (null = n_heads; fewer: grouped-query attention).
        norm_eps: Epsilon of every RMSNorm (tiny: 1e-6; SMDM's published model: 1e-5).
        rope_table_dtype: None: float32 rotary tables. A torch dtype name, e.g. "bfloat16":
            the tables are rounded to that dtype and used in float32, as SMDM's published
            `build_rope_cache` does even for a float32 model.
        mask_output_row: The output layer has a row for the mask id (tiny). False: it has
            none, as SMDM's published `lm_head` (the mask is the last id); the mask's logit
            is then a constant 0. Decoders never propose the mask either way.
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
        n_kv_heads: int | None = None,
        norm_eps: float = 1e-6,
        rope_table_dtype: str | None = None,
        mask_output_row: bool = True,
    ) -> None:
        super().__init__(tokenizer)
        if not mask_output_row and self.mask_id != len(tokenizer) - 1:
            raise ValueError(
                f"mask_output_row=false needs the mask to be the last id ({len(tokenizer) - 1}); "
                f"the tokenizer's mask id is {self.mask_id}"
            )
        cfg = TransformerConfig(
            vocab_size=len(tokenizer),
            d_model=d_model,
            n_layers=n_layers,
            n_heads=n_heads,
            n_kv_heads=n_kv_heads or n_heads,
            mlp_hidden=int(mlp_ratio * d_model),
            rope_theta=rope_base,
            norm_eps=norm_eps,
            rope_table_dtype=rope_table_dtype,
            init_std=init_std,
            residual_init=True,
            conv_kernel=conv_kernel,
            max_positions=max_len if learned_pos else None,
            output_rows=len(tokenizer) - (not mask_output_row),
        )
        self.model = DLMTransformer(cfg)
        self.model.reset_parameters()
        self.n_layers, self.hidden_size, self.max_len = n_layers, d_model, max_len
        self.tap_layer = check_tap_layer(tap_layer, n_layers)
        self.mask_output_row = mask_output_row

    def positions(self, tokens: torch.Tensor, keep: torch.Tensor | None) -> torch.Tensor:
        """Position ids (B, L) that skip left padding."""
        if keep is None:
            return torch.arange(tokens.shape[1], device=tokens.device).expand_as(tokens)
        return positions_from_mask(keep)

    def lm_logits(self, final: torch.Tensor) -> torch.Tensor:
        """Logits (B, n, V); a 0 column for the mask if the output layer has no row for it."""
        logits = super().lm_logits(final)
        return logits if self.mask_output_row else nn.functional.pad(logits, (0, 1))

    def _states(
        self,
        tokens: torch.Tensor,
        attention_mask: torch.Tensor | None,
        n_blocks: int,
        cache: KVCache | None = None,
    ) -> list[torch.Tensor]:
        if tokens.shape[1] > self.max_len:
            raise ValueError(
                f"sequence length {tokens.shape[1]} exceeds backbone.max_len={self.max_len}"
            )
        return super()._states(tokens, attention_mask, n_blocks, cache)
