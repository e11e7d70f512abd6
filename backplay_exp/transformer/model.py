"""The bidirectional Llama-shaped DLM that LLaDA, Dream, SMDM and `tiny` all are, written here.

LLaDA-8B (an OLMo "llama" block without a causal mask), Dream-7B (Qwen2.5 without a causal
mask), SMDM (lit-gpt/TinyLlama without one) and the embedded `tiny` model compute the same
thing: an embedding (plus, for tiny, a learned absolute position embedding), N `Block`s, a final
RMSNorm and an LM head. What differs is a `TransformerConfig`: q/k/v biases (Dream), where the
rotation is computed and how its tables are rounded (`rotary.py`), the norm eps, tiny's
convolutional mixer, and the published weight names (each backbone's key map renames them onto
this module's names at load time).

Outputs follow the Hugging Face convention the published models use: `states` are
`[embeddings, block_1, ..., block_N]`; the LM head reads `norm(block_N)`.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from backplay_exp.transformer.block import Block, RMSNorm
from backplay_exp.transformer.config import TransformerConfig
from backplay_exp.transformer.kv_cache import KVCache
from backplay_exp.transformer.rotary import Rotary


class DLMTransformer(nn.Module):
    """Embedding, N `Block`s, final norm and LM head (see the module docstring).

    Args:
        cfg: The shape and numerics.
    """

    def __init__(self, cfg: TransformerConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Embedding(cfg.vocab_size, cfg.d_model, padding_idx=cfg.pad_token_id)
        self.pos_embed = None
        if cfg.max_positions is not None:
            self.pos_embed = nn.Embedding(cfg.max_positions, cfg.d_model)
        self.rotary = Rotary(cfg.head_dim, cfg.rope_theta, cfg.rope_fp32, cfg.table_dtype)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layers))
        self.norm = RMSNorm(cfg.d_model, cfg.norm_eps)
        self.lm_head = nn.Linear(cfg.d_model, cfg.output_rows or cfg.vocab_size, bias=False)
        self.tie_weights()
        self.gradient_checkpointing = False

    def tie_weights(self) -> None:
        """Point the LM head at the embedding matrix, if the config ties them."""
        if self.cfg.tie_embeddings:
            self.lm_head.weight = self.embed.weight

    def reset_parameters(self) -> None:
        """Random initialisation of a model built empty (meta device) or from scratch.

        Normal(0, init_std) weights (the residual output projections scaled by 1 / sqrt(2 N)
        with `residual_init`), zero biases, unit norm gains; a conv mixer PyTorch's own.
        """
        depth = 1 / math.sqrt(2 * self.cfg.n_layers) if self.cfg.residual_init else 1.0
        for name, module in self.named_modules():
            if isinstance(module, nn.Linear | nn.Embedding):
                scale = depth if name.endswith(("o_proj", "down_proj")) else 1.0
                nn.init.normal_(module.weight, std=self.cfg.init_std * scale)
            if isinstance(module, nn.Linear) and module.bias is not None:
                nn.init.zeros_(module.bias)
            if isinstance(module, RMSNorm):
                nn.init.ones_(module.weight)
            if isinstance(module, nn.Conv1d):
                module.reset_parameters()

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
            positions: (B, L) position ids (rotary, and the learned embedding if any).
            keep: (B, L) bool, False at padding keys (never attended to); None = no padding.
            n_blocks: How many blocks to run (later blocks are skipped).
            cache: Records every block's keys and values, or restricts the forward to its
                n positions (`KVCache`); None = all L positions, nothing kept.
        """
        span = slice(None) if cache is None else cache.positions(tokens.shape[1])
        h, rope = self.embed_positions(tokens[:, span], positions[:, span])
        states = [h]
        for i, block in enumerate(self.blocks[:n_blocks]):
            layer = None if cache is None else cache.layer(i)
            if self.gradient_checkpointing and self.training and torch.is_grad_enabled():
                h = checkpoint(block, h, rope, keep, layer, use_reentrant=False)
            else:
                h = block(h, rope, keep, layer)
            states.append(h)
        return states

    def embed_positions(
        self, tokens: torch.Tensor, positions: torch.Tensor
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """The first block's input (B, n, D) and the rotary tables of `positions` (B, n)."""
        h = self.embed(tokens)
        if self.pos_embed is not None:
            h = h + self.pos_embed(positions)
        return h, self.rotary.tables(positions)

    def first_queries_keys(
        self, tokens: torch.Tensor, positions: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The first block's rotated queries (B, H, n, hd) and keys (B, Hkv, n, hd).

        They depend on the tokens and positions alone (no other position), so they can be
        computed for any subset of positions without a forward pass.
        """
        h, rope = self.embed_positions(tokens, positions)
        first = self.blocks[0]
        return first.queries_keys(first.attn_norm(h), rope)
