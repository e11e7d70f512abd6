"""SMDM-1B (Nie et al. 2024) as the in-repo transformer, and the conversion of its weights.

SMDM's masked diffusion models are lit-gpt/TinyLlama transformers without a causal mask. The
1B model (`Diff_LLaMA_1028M`, 1028M non-embedding parameters): 20 blocks, width 1792, 14 heads
(head dim 128, no grouped queries), SwiGLU width 7168, RMSNorm, rotary positions (base 10000),
no biases, no conv mixer; the Llama-2 tokenizer (32000 tokens) plus the mask token at id 32000
(an extra embedding row; the output layer has 32000 rows). That is `TinyBackbone` with
`conv_kernel: 0` and `learned_pos: false` (conf/backbone/smdm_1b.yaml); BackPlay taps block 19
of 20 (`tap_layer: -2`).

SMDM's published weights load through a key map of their own (`SMDM_KEYMAP`, as LLaDA's and
Dream's): lit-gpt's names (`transformer.wte`, `transformer.h.N.{norm_1, attn.proj, norm_2}`,
`mlp.fc_1`/`fc_2`/`proj` or TinyLlama's `mlp.swiglu.w1`/`w2`/`w3`, `transformer.ln_f`,
`lm_head`) onto the transformer's. One tensor is fused in the published layout: `attn.attn`
holds, head by head, `[q_h, k_h, v_h]`; `split_fused_attention` cuts it into q, k and v before
the renaming (a loading concern; the block itself has separate projections). The rotary layout
is the same as the stack's (GPT-NeoX: channel j turns with j + hd/2), so nothing is permuted.
The output layer has no row for the mask token. `smdm_1b` keeps it so (`mask_output_row:
false`: the published parameter count, the mask's logit a constant 0); with a row, the converter
adds a zero one. Decoders never propose the mask either way.

Two facts of SMDM's published code (ML-GSAI/SMDM, `lit_gpt/diffmodel.py` and `config.py`)
that the converted model reproduces through two `TinyBackbone` options (set in
conf/backbone/smdm_1b.yaml):

- `norm_eps: 1.0e-5`: every RMSNorm of `Diff_LLaMA_1028M` uses eps 1e-5 (tiny's is 1e-6).
- `rope_table_dtype: bfloat16`: `TransEncoder.build_rope_cache` hard-codes
  `dtype=torch.bfloat16`, so SMDM's cos/sin tables are rounded to bf16 even in a float32 model
  and the rotation is then computed in float32; the released model was trained with them.
  `transformer.rotary.Rotary` follows that recipe with `table_dtype`.

With both, a converted tiny random `TransEncoder` of the published code reproduces its float32
logits to 1.7e-6 and its block outputs to under 1e-6 (tests/backbones/test_smdm.py, against the
published code's outputs in ../shared/fixtures/real_backbones/smdm); without one or both options
the logits move by 4.6e-4 to 1.0e-3 on those weights.

The shape above is SMDM's lit-gpt config as published with its code (not checked against the
released file here, which cannot be downloaded): the converter checks every shape and names the
first that differs.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig
from transformers import AutoTokenizer, PreTrainedTokenizerBase

from backplay_exp.backbones.base import Backbone
from backplay_exp.backbones.native.checkpoint import KeyMap
from backplay_exp.backbones.tiny import TinyBackbone

log = logging.getLogger(__name__)

H = "transformer.h.{i}."
SMDM_KEYMAP = KeyMap(
    [
        ("transformer.wte", "embed"),
        ("transformer.ln_f", "norm"),
        ("lm_head", "lm_head"),
        *(
            (H + published, "blocks.{i}." + native)
            for published, native in [
                ("norm_1", "attn_norm"),
                ("attn.q", "q_proj"),  # the three parts of the fused `attn.attn`
                ("attn.k", "k_proj"),
                ("attn.v", "v_proj"),
                ("attn.proj", "o_proj"),
                ("norm_2", "mlp_norm"),
                ("mlp.fc_1", "gate_proj"),  # lit-gpt's LLaMAMLP
                ("mlp.fc_2", "up_proj"),
                ("mlp.proj", "down_proj"),
                ("mlp.swiglu.w1", "gate_proj"),  # TinyLlama's xformers SwiGLU
                ("mlp.swiglu.w2", "up_proj"),
                ("mlp.swiglu.w3", "down_proj"),
            ]
        ),
    ]
)


def smdm_tokenizer(name_or_path: str, mask_token: str) -> PreTrainedTokenizerBase:
    """The Llama-2 tokenizer with SMDM's mask token appended (id = base vocabulary size).

    Args:
        name_or_path: Hub name or directory of a Llama-2-vocabulary tokenizer (SMDM uses
            TinyLlama's).
        mask_token: The string of the added mask token.

    Raises:
        ValueError: if the mask token does not land right after the base vocabulary.
    """
    tokenizer = AutoTokenizer.from_pretrained(name_or_path)
    base = len(tokenizer)
    tokenizer.add_special_tokens({"mask_token": mask_token})
    if tokenizer.mask_token_id != base:
        raise ValueError(
            f"mask token {mask_token!r} got id {tokenizer.mask_token_id}, expected {base} "
            "(SMDM's mask id is the first id after the vocabulary)"
        )
    return tokenizer


def _pad_rows(weight: torch.Tensor, rows: int, what: str) -> torch.Tensor:
    if weight.shape[0] == rows:
        return weight
    if weight.shape[0] == rows - 1:  # no row for the mask token (the last id)
        return torch.cat([weight, weight.new_zeros(1, weight.shape[1])])
    raise ValueError(f"SMDM {what} has {weight.shape[0]} rows; the tokenizer has {rows} ids")


def split_fused_attention(state: dict[str, torch.Tensor], n_heads: int) -> dict[str, torch.Tensor]:
    """`state` with every `attn.attn` (rows `[q_h, k_h, v_h]` per head) cut into `attn.q/k/v`.

    Raises:
        ValueError: on an unexpected shape (grouped-query checkpoints are not supported).
    """
    out = {}
    for key, value in state.items():
        if not key.endswith(".attn.attn.weight"):
            out[key] = value
            continue
        d = value.shape[1]
        if value.shape != (3 * d, d) or d % n_heads:
            raise ValueError(
                f"{key} has shape {tuple(value.shape)}, expected {(3 * d, d)} with "
                f"n_heads={n_heads} (grouped-query attention is not supported)"
            )
        parts = value.view(n_heads, 3, d // n_heads, d).unbind(1)  # q, k, v: (H, hd, d) each
        for name, part in zip("qkv", parts, strict=True):
            out[key.replace(".attn.attn.", f".attn.{name}.")] = part.reshape(d, d)
    return out


def convert_smdm_state_dict(
    state: dict[str, torch.Tensor], n_heads: int, vocab_size: int, mask_output_row: bool = True
) -> dict[str, torch.Tensor]:
    """SMDM (lit-gpt) weights under the transformer's names (see the module docstring).

    Args:
        state: SMDM state dict (`transformer.wte.weight`, `transformer.h.{i}...`, `lm_head`).
        n_heads: Attention heads (SMDM-1B: 14); grouped-query checkpoints are not supported.
        vocab_size: Rows of the embedding (`len(tokenizer)`).
        mask_output_row: Whether the output layer has a row for the mask id (a zero row is
            added to the published one); false for `smdm_1b`, whose output layer is SMDM's.

    Returns:
        A state dict for `DLMTransformer` (`TinyBackbone(conv_kernel=0, learned_pos=False).model`).

    Raises:
        ValueError: on unknown or missing keys or unexpected shapes, naming them.
    """
    state = {k.removeprefix("model.").removeprefix("_orig_mod."): v for k, v in state.items()}
    if "transformer.wte.weight" not in state:
        raise ValueError("not an SMDM/lit-gpt state dict: `transformer.wte.weight` is missing")
    out, unknown = {}, []
    for key, value in split_fused_attention(state, n_heads).items():
        name = SMDM_KEYMAP.to_native(key)
        if name is None:
            unknown.append(key)
        else:
            out[name] = value
    if unknown:
        raise ValueError(f"SMDM tensors this architecture does not have: {unknown[:8]}")
    out["embed.weight"] = _pad_rows(out["embed.weight"], vocab_size, "embedding")
    rows = vocab_size - (not mask_output_row)
    out["lm_head.weight"] = _pad_rows(out["lm_head.weight"], rows, "lm_head")
    return out


def load_smdm_checkpoint(path: str | Path) -> dict[str, torch.Tensor]:
    """Read an SMDM checkpoint: `.safetensors`, or a `.pth`/`.pt` (optionally `{"model": ...}`)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"SMDM checkpoint {path} not found (backbone.init_from)")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    state = torch.load(path, map_location="cpu", weights_only=True)
    return state.get("model", state)


class SMDMBackbone(TinyBackbone):
    """`backbone=smdm_1b`: `TinyBackbone` at SMDM's shape, optionally starting from its weights.

    Args:
        init_from: Path of SMDM's released checkpoint, converted at construction (the SFT
            stage starts from it); null = random initialisation.
        **kwargs: `TinyBackbone` arguments.
    """

    name = "smdm"

    def __init__(self, init_from: str | None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if init_from is not None:
            state = convert_smdm_state_dict(
                load_smdm_checkpoint(init_from),
                self.model.cfg.n_heads,
                len(self.tokenizer),
                self.mask_output_row,
            )
            self.model.load_state_dict(state)
            log.info("SMDM weights loaded from %s", init_from)

    @classmethod
    def from_saved(cls, ckpt: Path, cfg: DictConfig, overrides: dict) -> Backbone:
        """Rebuild a saved (e.g. fine-tuned) backbone without re-reading `init_from`."""
        return super().from_saved(ckpt, cfg, {**overrides, "init_from": None})
