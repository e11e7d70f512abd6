"""SMDM-1B (Nie et al. 2024) as the in-repo transformer, and the conversion of its weights.

SMDM's masked diffusion models are lit-gpt/TinyLlama transformers without a causal mask. The
1B model (`Diff_LLaMA_1028M`, 1028M non-embedding parameters): 20 blocks, width 1792, 14 heads
(head dim 128, no grouped queries), SwiGLU width 7168, RMSNorm, rotary positions (base 10000),
no biases, no conv mixer; the Llama-2 tokenizer (32000 tokens) plus the mask token at id 32000
(an extra embedding row; the output layer has 32000 rows). That is `TinyBackbone` with
`conv_kernel: 0` and `learned_pos: false` (conf/backbone/smdm_1b.yaml); BackPlay taps block 19
of 20 (`tap_layer: -2`).

`convert_smdm_state_dict` maps a lit-gpt state dict onto `TinyBackbone`'s keys:

- `attn.attn` rows are grouped per head as `[q_h, k_h, v_h]`; tiny's `qkv` wants `[q; k; v]`.
- lit-gpt rotates channel `j` with `j + hd/2` (GPT-NeoX style); tiny rotates `2j` with `2j+1`.
  Permuting the rows of q and k within each head (`new[2j] = old[j]`, `new[2j+1] =
  old[j + hd/2]`) gives identical attention scores (same pairs, same frequencies).
- `mlp.fc_1`/`fc_2`/`proj` (or TinyLlama's `swiglu.w1`/`w2`/`w3`) -> `gate_up` = [gate; up], `down`.
- The output layer has no row for the mask token. `smdm_1b` keeps it so (`mask_output_row:
  false`: the published parameter count, the mask's logit a constant 0); with a row, the
  converter adds a zero one. Decoders never propose the mask either way.

Two facts of SMDM's published code (ML-GSAI/SMDM, `lit_gpt/diffmodel.py` and `config.py`)
that the converted model reproduces through two `TinyBackbone` options (set in
conf/backbone/smdm_1b.yaml; tiny's defaults keep the old behaviour):

- `norm_eps: 1.0e-5`: every RMSNorm of `Diff_LLaMA_1028M` uses eps 1e-5 (tiny's is 1e-6).
- `rope_table_dtype: bfloat16`: `TransEncoder.build_rope_cache` hard-codes
  `dtype=torch.bfloat16`, so SMDM's cos/sin tables are rounded to bf16 even in a float32 model
  and the rotation is then computed in float32; the released model was trained with them.
  `rotary_tables` follows that recipe, including its frequencies `1 / base ** (2i / hd)` (the
  float32 rounding of `base ** (-2i / hd)`, tiny's, moves some bf16 table entries by one step).

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
from backplay_exp.backbones.tiny import TinyBackbone

log = logging.getLogger(__name__)

# lit-gpt (fc_1, fc_2, proj) and TinyLlama/xformers (swiglu.w1, w2, w3) names of the SwiGLU MLP
MLP_NAMES = (
    ("mlp.fc_1", "mlp.fc_2", "mlp.proj"),
    ("mlp.swiglu.w1", "mlp.swiglu.w2", "mlp.swiglu.w3"),
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


def rope_half_to_interleaved(head_dim: int) -> torch.Tensor:
    """Row order that turns NeoX-style rotary pairs `(j, j + hd/2)` into `(2j, 2j + 1)`."""
    half = head_dim // 2
    return torch.stack([torch.arange(half), torch.arange(half) + half], dim=1).flatten()


def _pad_rows(weight: torch.Tensor, rows: int, what: str) -> torch.Tensor:
    if weight.shape[0] == rows:
        return weight
    if weight.shape[0] == rows - 1:  # no row for the mask token (the last id)
        return torch.cat([weight, weight.new_zeros(1, weight.shape[1])])
    raise ValueError(f"SMDM {what} has {weight.shape[0]} rows; the tokenizer has {rows} ids")


def convert_smdm_state_dict(
    state: dict[str, torch.Tensor], n_heads: int, vocab_size: int, mask_output_row: bool = True
) -> dict[str, torch.Tensor]:
    """Map SMDM (lit-gpt) weights onto `TinyBackbone` keys (see the module docstring).

    Args:
        state: SMDM state dict (`transformer.wte.weight`, `transformer.h.{i}...`, `lm_head`).
        n_heads: Attention heads (SMDM-1B: 14); grouped-query checkpoints are not supported.
        vocab_size: Rows of tiny's embedding (`len(tokenizer)`).
        mask_output_row: Whether tiny's output layer has a row for the mask id (a zero row is
            added to the published one); false for `smdm_1b`, whose output layer is SMDM's.

    Returns:
        A state dict for `TinyBackbone(conv_kernel=0, learned_pos=False)`.

    Raises:
        ValueError: on missing keys or unexpected shapes, naming them.
    """
    state = {k.removeprefix("model.").removeprefix("_orig_mod."): v for k, v in state.items()}
    if "transformer.wte.weight" not in state:
        raise ValueError("not an SMDM/lit-gpt state dict: `transformer.wte.weight` is missing")
    n_layers = 1 + max(int(k.split(".")[2]) for k in state if k.startswith("transformer.h."))
    d = state["transformer.wte.weight"].shape[1]
    hd = d // n_heads
    perm = rope_half_to_interleaved(hd)
    out = {
        "embed.weight": _pad_rows(state["transformer.wte.weight"], vocab_size, "embedding"),
        "norm.weight": state["transformer.ln_f.weight"],
        "lm_head.weight": _pad_rows(
            state["lm_head.weight"], vocab_size - (not mask_output_row), "lm_head"
        ),
    }
    for i in range(n_layers):
        src, dst = f"transformer.h.{i}.", f"blocks.{i}."
        qkv = state[src + "attn.attn.weight"]
        if qkv.shape != (3 * d, d):
            raise ValueError(
                f"{src}attn.attn.weight has shape {tuple(qkv.shape)}, expected {(3 * d, d)} "
                f"(n_heads={n_heads}; grouped-query attention is not supported)"
            )
        q, k, v = qkv.view(n_heads, 3, hd, d).unbind(1)  # each (H, hd, d)
        q, k = q[:, perm], k[:, perm]  # NeoX -> interleaved rotary pairs
        out[dst + "qkv.weight"] = torch.cat([q, k, v]).reshape(3 * d, d)
        out[dst + "attn_out.weight"] = state[src + "attn.proj.weight"]
        out[dst + "attn_norm.weight"] = state[src + "norm_1.weight"]
        out[dst + "mlp_norm.weight"] = state[src + "norm_2.weight"]
        names = next((n for n in MLP_NAMES if src + n[0] + ".weight" in state), None)
        if names is None:
            raise ValueError(f"{src}mlp: neither {MLP_NAMES[0]} nor {MLP_NAMES[1]} weights found")
        gate, up, down = (state[src + n + ".weight"] for n in names)
        out[dst + "gate_up.weight"] = torch.cat([gate, up])
        out[dst + "down.weight"] = down
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
                self.blocks[0].n_heads,
                len(self.tokenizer),
                self.mask_output_row,
            )
            self.load_state_dict(state)
            log.info("SMDM weights loaded from %s", init_from)

    @classmethod
    def from_saved(cls, ckpt: Path, cfg: DictConfig, overrides: dict) -> Backbone:
        """Rebuild a saved (e.g. fine-tuned) backbone without re-reading `init_from`."""
        return super().from_saved(ckpt, cfg, {**overrides, "init_from": None})
