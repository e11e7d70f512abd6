"""Losses of the diffusion LM and of the correction head.

METHOD.md section 2 (SFT): `sum_{i masked} CE(f(x_t)_i, x0_i) / p_mask`, divided by the number of
maskable response tokens of the sequence, averaged over the batch (LLaDA's normalisation).
METHOD.md section 3 (head): BCE on scored positions, label 1 = the token is correct.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def sft_loss(
    logits: torch.Tensor,
    x0: torch.Tensor,
    mask: torch.Tensor,
    p_mask: torch.Tensor,
    maskable: torch.Tensor,
) -> torch.Tensor:
    """LLaDA's masked-diffusion SFT loss.

    Args:
        logits: (B, L, V) predictions on `x_t`.
        x0: (B, L) clean tokens.
        mask: (B, L) bool, the masked positions of `x_t`.
        p_mask: (B,) masking probability each row was masked with.
        maskable: (B, L) bool, positions that could have been masked (the normaliser).

    Returns:
        Scalar loss (0 if nothing is masked).
    """
    assert logits.shape[:2] == x0.shape == mask.shape == maskable.shape
    rows = mask.nonzero(as_tuple=True)[0]  # (M,)
    ce = F.cross_entropy(logits[mask].float(), x0[mask], reduction="none")  # (M,)
    n_maskable = maskable.sum(-1).clamp(min=1).float()  # (B,)
    weight = 1.0 / (p_mask[rows] * n_maskable[rows])  # (M,)
    return (ce * weight).sum() / x0.shape[0]


def head_bce_loss(
    logits: torch.Tensor,
    labels: torch.Tensor,
    scored: torch.Tensor,
    pos_weight: float | None = None,
) -> torch.Tensor:
    """BCE of the correction head over scored positions.

    Args:
        logits: (B, L) head logits; `sigmoid(logit)` is the probability the token is correct.
        labels: (B, L) bool or float, 1 where the token equals the clean token.
        scored: (B, L) bool, positions that enter the loss.
        pos_weight: Optional weight of the positive (correct) class.

    Returns:
        Mean BCE over scored positions (0 if none).
    """
    assert logits.shape == labels.shape == scored.shape
    if not scored.any():
        return logits.sum() * 0.0
    pw = None if pos_weight is None else torch.tensor(pos_weight, device=logits.device)
    return F.binary_cross_entropy_with_logits(
        logits[scored].float(), labels[scored].float(), pos_weight=pw
    )
