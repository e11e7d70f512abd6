"""LLaDA (Nie et al. 2025) through its remote modeling code: the paper's 8B backbone.

`AutoModel.from_pretrained(..., trust_remote_code=True)` gives `LLaDAModelLM`; its
`forward(input_ids, attention_mask=..., output_hidden_states=True)` returns `logits` aligned to
positions (a masked LM: no shift) and `hidden_states` = `[embeddings, block_1, ..., block_31,
ln_f(block_32)]`, so `tap_layer=-2` is block 31's output (the paper's "31st layer").

LLaDA has no KV cache (`use_cache=False`) and no position-id input: its rotary positions are
absolute, so a left-padded prompt sees shifted positions, exactly as in LLaDA's own batched
`generate()`. The 2-D attention mask is passed only when a batch holds padding (LLaDA's
reference passes none), so unpadded batches run the same kernel as the reference.
"""

from __future__ import annotations

from typing import Any

import torch

from backplay_exp.backbones.hf import HFBackbone


class LLaDABackbone(HFBackbone):
    """`backbone=llada_8b` / `llada_8b_instruct`: LLaDA-8B Base or Instruct (see `HFBackbone`)."""

    auto_class = "AutoModel"

    def model_inputs(self, tokens: torch.Tensor, keep: torch.Tensor | None) -> dict[str, Any]:
        """`input_ids`, the 2-D mask (only if padded) and `use_cache=False`."""
        return {
            "input_ids": tokens,
            "attention_mask": None if keep is None else keep.long(),
            "use_cache": False,
        }
