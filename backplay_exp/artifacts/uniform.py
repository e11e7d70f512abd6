"""Uniform-noise artifacts (RemeDi-style; LLaDA2.1's `random_vocab` T2T recipe).

METHOD.md section 4 (`uniform`): `x̃ = x_t`, then a fraction `ρ_u ~ U(ρ_min, ρ_max)` of the
visible maskable response tokens is replaced by tokens drawn uniformly from the vocabulary,
special tokens excluded. No model call: the errors are not the model's own.
"""

from __future__ import annotations

import torch

from backplay_exp.artifacts.base import Artifact, Clean, RangedArtifact, finish
from backplay_exp.backbones.base import Backbone
from backplay_exp.diffusion.masking import mask_tokens


def uniform_corrupt(
    x0: torch.Tensor,
    maskable: torch.Tensor,
    mask_id: int,
    t: torch.Tensor,
    rho: torch.Tensor,
    allowed: torch.Tensor,
    generator: torch.Generator | None = None,
) -> Artifact:
    """Mask at rate `t` (B,), then replace a fraction `rho` (B,) of what stays visible.

    Args:
        x0: (B, L) clean tokens.
        maskable: (B, L) bool.
        mask_id: Mask token id.
        t: (B,) mask rate.
        rho: (B,) replacement rate among visible maskable tokens.
        allowed: (V',) long, the token ids noise is drawn from.
        generator: Explicit randomness.
    """
    x_t, mask_t = mask_tokens(x0, maskable, t, mask_id, generator)
    visible = maskable & ~mask_t
    u = torch.rand(x0.shape, generator=generator, device=x0.device)
    replace = visible & (u < rho[:, None])
    noise = allowed[torch.randint(len(allowed), x0.shape, generator=generator, device=x0.device)]
    return finish(torch.where(replace, noise, x_t), x0, visible)


def non_special_ids(backbone: Backbone) -> torch.Tensor:
    """(V',) ids of the backbone's vocabulary that are not special tokens."""
    keep = torch.ones(len(backbone.tokenizer), dtype=torch.bool)
    keep[list(backbone.tokenizer.all_special_ids)] = False
    keep[backbone.mask_id] = False
    return keep.nonzero().squeeze(-1)


class UniformArtifact(RangedArtifact):
    """`artifact=uniform`: random-vocabulary corruption of visible tokens.

    Args:
        t_min: Lower bound of the mask rate t.
        t_max: Upper bound of t.
        rho_min: Lower bound of the replaced fraction.
        rho_max: Upper bound of the replaced fraction.
    """

    name = "uniform"

    def __init__(self, t_min: float, t_max: float, rho_min: float, rho_max: float) -> None:
        self.ranges = {"t": (t_min, t_max), "rho": (rho_min, rho_max)}

    def corrupt(self, clean: Clean, t: torch.Tensor, rho: torch.Tensor) -> Artifact:
        """Replace visible tokens by uniform noise; the model is not called (no model errors)."""
        allowed = non_special_ids(clean.backbone).to(clean.x0.device)
        mask_id = clean.backbone.mask_id
        return uniform_corrupt(clean.x0, clean.maskable, mask_id, t, rho, allowed, clean.generator)


class RandomVocabArtifact(UniformArtifact):
    """`artifact=random_vocab`: LLaDA2.1's released T2T recipe, uniform vocabulary noise.

    The same corruption as `uniform` (METHOD.md section 4), named as the T2T baseline that
    `draft` is compared with.
    """

    name = "random_vocab"
