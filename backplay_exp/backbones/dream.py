"""Dream (Ye et al. 2025), a Qwen2.5-shaped bidirectional DLM, natively, with its logits realigned.

`DreamBackbone` reads a published Dream-v0 checkpoint (Base or Instruct 7B) and runs it on
`DLMTransformer`. Matched: the hub `modeling_dream.py` (`../shared/reference/dream/`), checked
against golden outputs of that code (`../shared/fixtures/real_backbones/dream`).

- Config: Qwen2's `hidden_size`, `num_hidden_layers`, `num_attention_heads`,
  `num_key_value_heads` (grouped-query attention), `intermediate_size`, `vocab_size`,
  `rope_theta`, `rms_norm_eps`, `tie_word_embeddings`; q/k/v carry biases, the output
  projection none. The rotation runs in the activation dtype (cos/sin cast to it), as Qwen2's.
  Sliding windows and rope scaling are refused. The embedding is built with
  `padding_idx=pad_token_id` as Dream's is (that row gets no gradient in fine-tuning).
- Weights: `model.embed_tokens`, `model.norm`, `lm_head` and, per block, `model.layers.N.
  {input_layernorm, self_attn.{q,k,v,o}_proj, post_attention_layernorm, mlp.{gate,up,down}_proj}`.
- Padding follows Dream's `diffusion_generate`: real queries attend to real keys only, and
  positions are counted over real tokens (`cumsum(mask) - 1`); unpadded rows use 0..L-1.
- Dream was initialised from an autoregressive LM and keeps its output convention:
  `logits[:, i]` is the prediction for token `i + 1`. The sampler, the SFT loss and the head all
  read `logits[:, i]` as "about token i", so the outputs are shifted right by one (as Dream's
  own generate does): `aligned[:, i] = raw[:, i - 1]` for `i >= 1`. Position 0 has no output
  that predicts it; Dream's reference fills it with `raw[:, 0]` and so do we. It never matters:
  position 0 is always a prompt token (or a pad), never masked, committed, edited or scored.
  `shift_hidden` shifts the tapped hidden state the same way, so that the head's input at
  position i is the state whose logits are about token i **[choice]**; both come from one pass.
- Tokenizer: Qwen2's byte-level BPE plus Dream's added tokens (`Qwen2Tokenizer`, no remote code;
  the hub's tokenizer_config names a remote class with the same ids).
"""

from __future__ import annotations

from typing import Any

import torch

from backplay_exp.backbones.native.backbone import NativeBackbone, unsupported
from backplay_exp.backbones.native.checkpoint import KeyMap
from backplay_exp.transformer.block import positions_from_mask
from backplay_exp.transformer.config import TransformerConfig

LAYER = "model.layers.{i}."
SUPPORTED = {"hidden_act": "silu", "use_sliding_window": False, "rope_scaling": None}


def shift_to_positions(raw: torch.Tensor) -> torch.Tensor:
    """Realign next-token outputs: `out[:, i] = raw[:, i - 1]`, and `out[:, 0] = raw[:, 0]`.

    Args:
        raw: (B, L, ...) outputs where `raw[:, i]` is about token i + 1.

    Returns:
        (B, L, ...) outputs where `out[:, i]` is about token i (position 0: see module doc).
    """
    assert raw.ndim >= 2 and raw.shape[1] >= 1
    return torch.cat([raw[:, :1], raw[:, :-1]], dim=1)  # (B, L, ...)


class DreamBackbone(NativeBackbone):
    """`backbone=dream_7b`.

    Args:
        shift_hidden: Shift the tapped hidden state like the logits.
        **kwargs: `NativeBackbone` arguments.
    """

    family = "Dream"
    logit_shift = 1
    family_tokenizer = "transformers.Qwen2Tokenizer"
    keymap = KeyMap(
        [
            ("model.embed_tokens", "embed"),
            ("model.norm", "norm"),
            ("lm_head", "lm_head"),
            *(
                (LAYER + published, "blocks.{i}." + native)
                for published, native in [
                    ("input_layernorm", "attn_norm"),
                    ("self_attn.q_proj", "q_proj"),
                    ("self_attn.k_proj", "k_proj"),
                    ("self_attn.v_proj", "v_proj"),
                    ("self_attn.o_proj", "o_proj"),
                    ("post_attention_layernorm", "mlp_norm"),
                    ("mlp.gate_proj", "gate_proj"),
                    ("mlp.up_proj", "up_proj"),
                    ("mlp.down_proj", "down_proj"),
                ]
            ),
        ]
    )

    def __init__(self, shift_hidden: bool, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.shift_hidden = shift_hidden

    @classmethod
    def transformer_config(cls, published: dict[str, Any]) -> TransformerConfig:
        """Read Dream's (Qwen2's) config.json (see the module docstring)."""
        c = published
        unsupported(c, SUPPORTED, cls.family)
        return TransformerConfig(
            vocab_size=c["vocab_size"],
            d_model=c["hidden_size"],
            n_layers=c["num_hidden_layers"],
            n_heads=c["num_attention_heads"],
            n_kv_heads=c.get("num_key_value_heads") or c["num_attention_heads"],
            mlp_hidden=c["intermediate_size"],
            rope_theta=float(c["rope_theta"]),
            norm_eps=float(c["rms_norm_eps"]),
            qkv_bias=True,
            tie_embeddings=bool(c.get("tie_word_embeddings", False)),
            rope_fp32=False,
            pad_token_id=c.get("pad_token_id"),
            init_std=float(c.get("initializer_range", 0.02)),
        )

    def positions(self, tokens: torch.Tensor, keep: torch.Tensor | None) -> torch.Tensor:
        """Positions counted over real tokens (0..L-1 without padding)."""
        return positions_from_mask(
            torch.ones_like(tokens, dtype=torch.bool) if keep is None else keep
        )

    def align_hidden(self, hidden: torch.Tensor) -> torch.Tensor:
        """Shift like the logits if `shift_hidden`."""
        return shift_to_positions(hidden) if self.shift_hidden else hidden
