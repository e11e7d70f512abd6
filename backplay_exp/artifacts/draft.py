"""Self-generated draft errors (the T2T paper's artifacts; METHOD.md section 4, `draft`).

Mask the clean response at a rate `t ~ U(t_min, t_max)`, run one no-gradient draft pass of the
model on `x_t` and fill every masked position with its argmax. The result is fully visible: the
errors are the model's own fluent, confident guesses, the ones a token editor meets at inference
(unlike `random_vocab`'s uniform noise). Labels are `x̃ == x0`; every maskable response position
is scored (drafted and untouched alike, so the editor also learns to keep correct tokens).
"""

from __future__ import annotations

import torch

from backplay_exp.artifacts.base import Artifact, Clean, LogitsFn, RangedArtifact, finish
from backplay_exp.diffusion.masking import mask_tokens


def draft_corrupt(
    x0: torch.Tensor,
    maskable: torch.Tensor,
    logits_fn: LogitsFn,
    mask_id: int,
    t: torch.Tensor,
    generator: torch.Generator | None = None,
) -> Artifact:
    """Mask at rate `t` (B,), then fill every mask with the model's argmax.

    Args:
        x0: (B, L) clean tokens.
        maskable: (B, L) bool, positions that may be masked (and are scored).
        logits_fn: The draft model, tokens (B, L) -> logits (B, L, V).
        mask_id: Mask token id.
        t: (B,) mask rate.
        generator: Explicit randomness.
    """
    x_t, mask_t = mask_tokens(x0, maskable, t, mask_id, generator)
    with torch.no_grad():
        guess = logits_fn(x_t).argmax(-1)  # (B, L)
    return finish(torch.where(mask_t, guess, x_t), x0, maskable)


class DraftArtifact(RangedArtifact):
    """`artifact=draft`: the model's own draft fills the masks of `x_t`.

    Args:
        t_min: Lower bound of the mask rate t.
        t_max: Upper bound of t.
    """

    name = "draft"

    def __init__(self, t_min: float, t_max: float) -> None:
        self.ranges = {"t": (t_min, t_max)}

    def corrupt(self, clean: Clean, t: torch.Tensor) -> Artifact:
        """Mask at rate `t` and fill the masks with the model's draft (`draft_corrupt`)."""
        mask_id = clean.backbone.mask_id
        return draft_corrupt(clean.x0, clean.maskable, clean.logits, mask_id, t, clean.generator)
