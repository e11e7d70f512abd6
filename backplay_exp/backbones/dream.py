"""Dream (Ye et al. 2025) through its remote modeling code, with its logits realigned.

Dream was initialised from an autoregressive LM (Qwen2.5) and keeps its output convention:
`logits[:, i]` is the prediction for token `i + 1`. The sampler, the SFT loss and the head all
read `logits[:, i]` as "about token i", so the adapter shifts right by one (as Dream's own
`diffusion_generate` does): `aligned[:, i] = raw[:, i - 1]` for `i >= 1`.

Position 0 has no output that predicts it (there is no position -1). Dream's reference fills it
with `raw[:, 0]` (the prediction for token 1); we do the same. It never matters: position 0 is
always a prompt token (prompts are non-empty; with left padding it is a pad), and prompt
positions are never masked, committed, edited or scored, so `aligned[:, 0]` reaches no decision.

`shift_hidden` applies the same shift to the tapped hidden state, so that the head's input at
position i is the state whose logits are about token i **[choice]**; both are from one pass.

Padding follows Dream's `diffusion_generate`: with padding, a 4-D boolean mask (real query x
real key) and position ids counted over real tokens; without, the string "full" (no mask).
"""

from __future__ import annotations

from typing import Any

import torch

from backplay_exp.backbones.hf import HFBackbone
from backplay_exp.layers import positions_from_mask


def shift_to_positions(raw: torch.Tensor) -> torch.Tensor:
    """Realign next-token outputs: `out[:, i] = raw[:, i - 1]`, and `out[:, 0] = raw[:, 0]`.

    Args:
        raw: (B, L, ...) outputs where `raw[:, i]` is about token i + 1.

    Returns:
        (B, L, ...) outputs where `out[:, i]` is about token i (position 0: see module doc).
    """
    assert raw.ndim >= 2 and raw.shape[1] >= 1
    return torch.cat([raw[:, :1], raw[:, :-1]], dim=1)  # (B, L, ...)


def dream_attention(keep: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Dream's padded-batch inputs: 4-D bool mask (B, 1, L, L) and position ids (B, L)."""
    mask = keep[:, None, :, None] & keep[:, None, None, :]  # (B, 1, L, L)
    return mask, positions_from_mask(keep)


class DreamBackbone(HFBackbone):
    """`backbone=dream_7b`: Dream-v0 7B (see `HFBackbone` for the arguments).

    Args:
        shift_hidden: Shift the tapped hidden state like the logits.
        **kwargs: `HFBackbone` arguments.
    """

    auto_class = "AutoModel"

    def __init__(self, shift_hidden: bool, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.shift_hidden = shift_hidden

    def model_inputs(self, tokens: torch.Tensor, keep: torch.Tensor | None) -> dict[str, Any]:
        """`input_ids` plus Dream's mask convention ("full", or 4-D mask + position ids)."""
        if keep is None:
            return {"input_ids": tokens, "attention_mask": "full", "use_cache": False}
        mask, positions = dream_attention(keep)
        return {
            "input_ids": tokens,
            "attention_mask": mask,
            "position_ids": positions,
            "use_cache": False,
        }

    def align(
        self, logits: torch.Tensor, hidden: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Shift the logits (and, if `shift_hidden`, the hidden state) right by one."""
        hidden = shift_to_positions(hidden) if self.shift_hidden else hidden
        return shift_to_positions(logits), hidden
