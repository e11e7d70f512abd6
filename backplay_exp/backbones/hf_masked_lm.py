"""Any `AutoModelForMaskedLM` (BERT, ModernBERT, ...) as a DLM backbone.

A bidirectional encoder with an MLM head is a masked diffusion LM once it is trained with the
diffusion loss (METHOD.md section 2): `logits[:, i]` is already about token i. BERT-style
tokenizers have no EoS token, so `eos_token` (e.g. `[SEP]`) names the one that pads responses.

With `position_ids_from_mask`, positions are counted over real tokens, so a left-padded prompt
sees the same positions as the unpadded one (like tiny). Turn it off for models whose position
ids are not 0-based (RoBERTa offsets them by its padding index) or that take none (DistilBERT).
"""

from __future__ import annotations

from typing import Any

import torch

from backplay_exp.backbones.hf import HFBackbone
from backplay_exp.transformer.block import positions_from_mask


class MaskedLMBackbone(HFBackbone):
    """`backbone=hf_masked_lm` (see `HFBackbone` for the arguments).

    Args:
        position_ids_from_mask: Pass position ids that skip left padding.
        **kwargs: `HFBackbone` arguments.
    """

    auto_class = "AutoModelForMaskedLM"

    def __init__(self, position_ids_from_mask: bool, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.position_ids_from_mask = position_ids_from_mask

    def model_inputs(self, tokens: torch.Tensor, keep: torch.Tensor | None) -> dict[str, Any]:
        """`input_ids`, the 2-D mask and, if padded, position ids over real tokens."""
        inputs = super().model_inputs(tokens, keep)
        if keep is not None and self.position_ids_from_mask:
            inputs["position_ids"] = positions_from_mask(keep)
        return inputs
