"""LLaDA (Nie et al. 2025), the paper's 8B backbone, natively: no remote code, exact outputs.

`LLaDABackbone` reads a published LLaDA checkpoint (LLaDA-8B Base/Instruct, LLaDA-1.5: same
architecture) and runs it on `DLMTransformer`. Matched: the hub `modeling_llada.py` of the
October 2025 revision (`../shared/reference/llada/`), checked against golden outputs of that
code (`../shared/fixtures/real_backbones/llada`, tests/backbones/test_native_parity.py).

- Config: `d_model`, `n_heads`, `n_kv_heads` (null: `multi_query_attention` ? 1 : n_heads),
  `n_layers`, `mlp_hidden_size` (null: `mlp_ratio * d_model`), `rope_theta`, `rms_norm_eps`,
  `embedding_size` (else `vocab_size`) rows, `weight_tying`, `include_qkv_bias`,
  `rope_full_precision` (rotary in float32). `block_type: llama` with SiLU-gated MLP, RMSNorm and
  rotary only: other OLMo options (ALiBi, QK-norm, biases, block groups, ...) are refused.
- Weights: `model.transformer.{wte, ln_f, ff_out}` and, per block,
  `model.transformer.blocks.N.{attn_norm, q_proj, k_proj, v_proj, attn_out, ff_norm, ff_proj,
  up_proj, ff_out}` (`ff_proj` is the SiLU gate, `up_proj` the linear branch).
- Padding: with a 2-D mask holding any 0, the published model adds `finfo.min` to the scores of
  padding keys (queries at padding still attend to real keys); here padding keys are masked out,
  which gives the same probabilities at real tokens. Positions are absolute (0..L-1, LLaDA takes
  no position ids), so a left-padded row sees shifted positions, as in LLaDA's batched
  generate(); rotary scores depend only on position differences, so the row's outputs do not
  change (tested).
- `hidden_states` = `[embeddings, block_1, ..., block_31, ln_f(block_32)]`; `tap_layer: -2` is
  block 31's output, the paper's "31st layer".
- Tokenizer: LLaDA's is a plain `tokenizer.json` (`PreTrainedTokenizerFast`, no remote code).
"""

from __future__ import annotations

from typing import Any

from backplay_exp.backbones.native.backbone import NativeBackbone, unsupported
from backplay_exp.backbones.native.checkpoint import KeyMap
from backplay_exp.transformer.config import TransformerConfig

BLOCK = "model.transformer.blocks.{i}."
# what the published config may say for the architecture implemented here
SUPPORTED = {
    "block_type": "llama",
    "activation_type": "silu",
    "layer_norm_type": "rms",
    "layer_norm_with_affine": True,
    "bias_for_layer_norm": False,
    "attention_layer_norm": False,
    "include_bias": False,
    "alibi": False,
    "rope": True,
    "scale_logits": False,
    "input_emb_norm": False,
    "block_group_size": 1,
    "clip_qkv": None,
}


class LLaDABackbone(NativeBackbone):
    """`backbone=llada_8b` / `llada_8b_instruct` (arguments: `NativeBackbone`)."""

    family = "LLaDA"
    family_tokenizer = "transformers.PreTrainedTokenizerFast"
    keymap = KeyMap(
        [
            ("model.transformer.wte", "embed"),
            ("model.transformer.ln_f", "norm"),
            ("model.transformer.ff_out", "lm_head"),
            *(
                (BLOCK + published, "blocks.{i}." + native)
                for published, native in [
                    ("attn_norm", "attn_norm"),
                    ("q_proj", "q_proj"),
                    ("k_proj", "k_proj"),
                    ("v_proj", "v_proj"),
                    ("attn_out", "o_proj"),
                    ("ff_norm", "mlp_norm"),
                    ("ff_proj", "gate_proj"),
                    ("up_proj", "up_proj"),
                    ("ff_out", "down_proj"),
                ]
            ),
        ]
    )

    @classmethod
    def transformer_config(cls, published: dict[str, Any]) -> TransformerConfig:
        """Read LLaDA's config.json (see the module docstring)."""
        c = published
        unsupported(c, SUPPORTED, cls.family)
        n_kv = c.get("n_kv_heads") or (1 if c.get("multi_query_attention") else c["n_heads"])
        return TransformerConfig(
            vocab_size=c.get("embedding_size") or c["vocab_size"],
            d_model=c["d_model"],
            n_layers=c["n_layers"],
            n_heads=c["n_heads"],
            n_kv_heads=n_kv,
            mlp_hidden=c.get("mlp_hidden_size") or c["mlp_ratio"] * c["d_model"],
            rope_theta=float(c["rope_theta"]),
            norm_eps=float(c["rms_norm_eps"]),
            qkv_bias=bool(c.get("include_qkv_bias", False)),
            tie_embeddings=bool(c.get("weight_tying", False)),
            rope_fp32=bool(c.get("rope_full_precision", True)),
            init_std=float(c.get("init_std", 0.02)),
        )
