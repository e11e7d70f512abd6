"""The forward (masking) process of a masked diffusion LM and BackPlay's EoS rule.

METHOD.md section 2: per sequence `t ~ U(0, 1)`, `p_mask = (1 - eps) t + eps`; every maskable
response token is replaced by the mask id independently with probability `p_mask`. Only the
first `eos_maskable` EoS tokens after the answer are maskable (BackPlay App. D); the rest of the
EoS padding stays visible and carries no loss. The prompt is never masked.
"""

from __future__ import annotations

import torch


def maskable_positions(
    x0: torch.Tensor, response: torch.Tensor, eos_id: int, eos_maskable: int | None
) -> torch.Tensor:
    """Positions that the forward process may mask.

    Args:
        x0: Clean tokens (B, L), long.
        response: (B, L) bool, True at response positions (the prompt is False).
        eos_id: The EoS id that pads responses.
        eos_maskable: How many EoS tokens after the last non-EoS response token stay maskable;
            None makes the whole response maskable (LLaDA's original rule).

    Returns:
        (B, L) bool.
    """
    assert x0.shape == response.shape and response.dtype == torch.bool
    if eos_maskable is None:
        return response.clone()
    pos = torch.arange(x0.shape[1], device=x0.device).expand_as(x0)  # (B, L)
    content = response & (x0 != eos_id)
    # last content position per row; a response that is all EoS starts counting at its start
    first_resp = torch.where(response, pos, x0.shape[1]).min(-1).values  # (B,)
    last_content = torch.where(content, pos, -1).max(-1).values  # (B,)
    last_content = torch.maximum(last_content, first_resp - 1)
    return response & (pos <= (last_content + eos_maskable)[:, None])


def sample_mask_prob(
    batch_size: int, eps: float, generator: torch.Generator | None = None, device: str = "cpu"
) -> torch.Tensor:
    """`p_mask = (1 - eps) t + eps` with `t ~ U(0, 1)` per sequence: (B,) float."""
    t = torch.rand(batch_size, generator=generator, device=device)
    return (1 - eps) * t + eps


def mask_tokens(
    x0: torch.Tensor,
    maskable: torch.Tensor,
    p_mask: torch.Tensor,
    mask_id: int,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mask each maskable token independently with its row's probability.

    Args:
        x0: Clean tokens (B, L).
        maskable: (B, L) bool.
        p_mask: (B,) masking probability per row.
        mask_id: The mask token id.
        generator: Explicit randomness.

    Returns:
        `xt` (B, L) with masks written in, and `mask` (B, L) bool (True = masked).
    """
    u = torch.rand(x0.shape, generator=generator, device=x0.device)  # (B, L)
    mask = maskable & (u < p_mask[:, None])
    return torch.where(mask, mask_id, x0), mask
