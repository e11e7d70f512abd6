"""Look-back Correction artifacts (BackPlay Alg. 2) and the PRISM-style one-step foil.

METHOD.md section 4 (`lbc`): sample `t ~ U(t_min, t_max)` and `Δ ~ U(Δ_min, Δ_max)` (clipped so
`t + Δ <= 1`), build `x_t`, then the more corrupted `x_{t+Δ}` by masking each still-visible token
of `x_t` with probability `Δ / (1 - t)`. The frozen model predicts `ŷ = argmax f(x_{t+Δ})` with
confidence `c`. Candidates `D` are masked in `x_{t+Δ}` but visible in `x_t`; the `⌈ρ|D|⌉` most
confident of them (ρ ~ U(ρ_min, ρ_max)) get the prediction written into `x_t`; every other
visible position keeps its ground truth. Early errors judged in a later, richer context.
"""

from __future__ import annotations

import torch

from backplay_exp.artifacts.base import Artifact, Clean, LogitsFn, RangedArtifact, finish
from backplay_exp.diffusion.masking import mask_tokens


def lbc_corrupt(
    x0: torch.Tensor,
    maskable: torch.Tensor,
    logits_fn: LogitsFn,
    mask_id: int,
    t: torch.Tensor,
    delta: torch.Tensor,
    rho: torch.Tensor,
    generator: torch.Generator | None = None,
) -> Artifact:
    """Algorithm 2 with explicit per-row `t`, `Δ`, `ρ` (each (B,)); see the module docstring.

    Args:
        x0: (B, L) clean tokens.
        maskable: (B, L) bool, positions the forward process may mask.
        logits_fn: The frozen model (tokens -> logits), called once under no_grad.
        mask_id: Mask token id.
        t: (B,) mask rate of `x_t`.
        delta: (B,) extra corruption; `t + Δ` is clipped to 1.
        rho: (B,) fraction of the candidates whose prediction is written in.
        generator: Explicit randomness.
    """
    delta = torch.minimum(delta, 1 - t)  # t + Δ <= 1
    x_t, mask_t = mask_tokens(x0, maskable, t, mask_id, generator)
    p_more = torch.where(t < 1, delta / (1 - t).clamp(min=1e-6), torch.ones_like(t))
    x_td, mask_more = mask_tokens(x_t, maskable & ~mask_t, p_more, mask_id, generator)
    with torch.no_grad():
        logits = logits_fn(x_td)  # (B, L, V)
    probs = torch.softmax(logits.float(), dim=-1)
    conf, y_hat = probs.max(-1)  # (B, L)
    cand = mask_more  # masked in x_{t+Δ}, visible in x_t
    n_pick = torch.ceil(rho * cand.sum(-1)).long()  # (B,)
    scores = conf.masked_fill(~cand, float("-inf"))
    rank = scores.argsort(-1, descending=True).argsort(-1)  # (B, L) rank of each position
    chosen = cand & (rank < n_pick[:, None])
    x_tilde = torch.where(chosen, y_hat, x_t)
    return finish(x_tilde, x0, maskable & ~mask_t)


class LbcArtifact(RangedArtifact):
    """`artifact=lbc`: Look-back Correction with ranges for t, Δ and ρ.

    Args:
        t_min: Lower bound of t.
        t_max: Upper bound of t.
        delta_min: Lower bound of Δ.
        delta_max: Upper bound of Δ.
        rho_min: Lower bound of the written fraction ρ.
        rho_max: Upper bound of ρ.
    """

    name = "lbc"

    def __init__(
        self,
        t_min: float,
        t_max: float,
        delta_min: float,
        delta_max: float,
        rho_min: float,
        rho_max: float,
    ) -> None:
        self.ranges = {
            "t": (t_min, t_max),
            "delta": (delta_min, delta_max),
            "rho": (rho_min, rho_max),
        }

    def corrupt(
        self, clean: Clean, t: torch.Tensor, delta: torch.Tensor, rho: torch.Tensor
    ) -> Artifact:
        """Corrupt with the model's own predictions (`lbc_corrupt`)."""
        x0, maskable, mask_id = clean.x0, clean.maskable, clean.backbone.mask_id
        return lbc_corrupt(x0, maskable, clean.logits, mask_id, t, delta, rho, clean.generator)


class OneStepArtifact(LbcArtifact):
    """`artifact=onestep` (PRISM-style): LBC with Δ fixed to one decoding step, `k / L`.

    Args:
        t_min: Lower bound of t.
        t_max: Upper bound of t.
        tokens_per_step: k of the decoding the errors should imitate.
        gen_length: Response length L.
        rho_min: Lower bound of ρ.
        rho_max: Upper bound of ρ.
    """

    name = "onestep"

    def __init__(
        self,
        t_min: float,
        t_max: float,
        tokens_per_step: int,
        gen_length: int,
        rho_min: float,
        rho_max: float,
    ) -> None:
        step = tokens_per_step / gen_length
        super().__init__(t_min, t_max, step, step, rho_min, rho_max)
