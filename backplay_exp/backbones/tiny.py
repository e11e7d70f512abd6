"""The embedded `tiny` DLM: a small bidirectional transformer with LLaDA's block shape.

Pre-norm blocks of RMSNorm -> rotary self-attention (no causal mask) -> optional depthwise
1-D convolution (a local mixer; TOY.md: it lets a sub-million-parameter model learn chained
arithmetic in CPU minutes) -> SwiGLU MLP. Positions come from the attention mask, so a
left-padded prompt sees the same positions as the unpadded one (batching equivalence).
"""

from __future__ import annotations

import math

import torch
from torch import nn
from transformers import PreTrainedTokenizerBase

from backplay_exp.backbones.base import Backbone, BackboneOutput, check_tap_layer
from backplay_exp.backbones.kv_cache import KVCache
from backplay_exp.layers import Block, RMSNorm, positions_from_mask, rotary_tables


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
        norm_eps: Epsilon of every RMSNorm (tiny: 1e-6; SMDM's published model: 1e-5).
        rope_table_dtype: None: float32 rotary tables (tiny). A torch dtype name, e.g.
            "bfloat16": the tables are rounded to that dtype and used in float32, as SMDM's
            published `build_rope_cache` does even for a float32 model (`rotary_tables`).
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
        norm_eps: float = 1e-6,
        rope_table_dtype: str | None = None,
        mask_output_row: bool = True,
    ) -> None:
        super().__init__(tokenizer)
        self.tap_layer = check_tap_layer(tap_layer, n_layers)
        self.hidden_size, self.max_len = d_model, max_len
        self.rope_base = rope_base
        table_dtype = None if rope_table_dtype is None else getattr(torch, rope_table_dtype, None)
        if rope_table_dtype is not None and not (
            isinstance(table_dtype, torch.dtype) and table_dtype.is_floating_point
        ):
            raise ValueError(f"rope_table_dtype={rope_table_dtype!r} is not a torch float dtype")
        self.rope_table_dtype = table_dtype
        self.embed = nn.Embedding(len(tokenizer), d_model)
        self.pos_embed = nn.Embedding(max_len, d_model) if learned_pos else None
        self.blocks = nn.ModuleList(
            Block(d_model, n_heads, mlp_ratio, conv_kernel, norm_eps) for _ in range(n_layers)
        )
        self.norm = RMSNorm(d_model, norm_eps)
        if not mask_output_row and self.mask_id != len(tokenizer) - 1:
            raise ValueError(
                f"mask_output_row=false needs the mask to be the last id ({len(tokenizer) - 1}); "
                f"the tokenizer's mask id is {self.mask_id}"
            )
        self.mask_output_row = mask_output_row
        self.lm_head = nn.Linear(d_model, len(tokenizer) - (not mask_output_row), bias=False)
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
        states = self._states(tokens, attention_mask, len(self.blocks))
        return BackboneOutput(logits=self._logits(states[-1]), hidden=states[self.tap_layer])

    def _logits(self, final: torch.Tensor) -> torch.Tensor:
        """(B, L, V) logits of the last block's states; a 0 column for the mask if it has no row."""
        logits = self.lm_head(self.norm(final))
        return logits if self.mask_output_row else nn.functional.pad(logits, (0, 1))

    def hidden_states(
        self, tokens: torch.Tensor, attention_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The tapped hidden state alone: blocks after the tap and the LM head are skipped."""
        tap = self.tap_layer % (len(self.blocks) + 1)  # index into [embeddings, blocks...]
        return self._states(tokens, attention_mask, tap)[tap]

    def decode(
        self,
        tokens: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        outputs: tuple[int, int] | torch.Tensor | None = None,
        cache: KVCache | None = None,
    ) -> BackboneOutput:
        """One decoding forward (see `Backbone.decode`): windowed logits, optional cache."""
        states = self._states(tokens, attention_mask, len(self.blocks), cache)
        return self.decoded(states[-1], states[self.tap_layer], outputs, cache, self._logits)

    def _states(
        self,
        tokens: torch.Tensor,
        attention_mask: torch.Tensor | None,
        n_blocks: int,
        cache: KVCache | None = None,
    ) -> list[torch.Tensor]:
        """[embeddings, block_1, ..., block_n_blocks] outputs, each (B, n, D).

        n = L, or the span of positions a `cache` asks for.
        """
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
        span = slice(None) if cache is None else cache.positions(tokens.shape[1])
        positions = positions_from_mask(keep)[:, span]  # (B, n): left padding ignored
        h = self.embed(tokens[:, span])  # (B, n, D)
        if self.pos_embed is not None:
            h = h + self.pos_embed(positions)
        rope = rotary_tables(
            positions, h.shape[-1] // self.blocks[0].n_heads, self.rope_base, self.rope_table_dtype
        )
        states = [h]
        for i, block in enumerate(self.blocks[:n_blocks]):
            h = block(h, rope, keep, None if cache is None else cache.layer(i))
            states.append(h)
        return states
