"""What an artifact distribution returns, and helpers shared by the distributions.

An artifact is a corrupted training sequence for the correction head: `x̃` (B, L), its labels
(True where the token equals the clean one) and the positions that are scored (visible maskable
response tokens; the prompt, the masks and the never-maskable EoS tail are excluded).
METHOD.md section 4.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import torch

from backplay_exp.backbones.base import Backbone


@dataclass
class Artifact:
    """`x` (B, L) corrupted tokens, `labels` (B, L) bool (token correct), `scored` (B, L) bool."""

    x: torch.Tensor
    labels: torch.Tensor
    scored: torch.Tensor


class LogitsFn(Protocol):
    """Any model call that maps tokens (B, L) to logits (B, L, V)."""

    def __call__(self, tokens: torch.Tensor) -> torch.Tensor:
        """Logits (B, L, V) of the tokens (B, L)."""
        ...


class ArtifactDistribution(Protocol):
    """Config group `artifact`: (clean batch, model) -> Artifact."""

    name: str

    def __call__(  # noqa: D102 - documented by the class
        self,
        x0: torch.Tensor,
        maskable: torch.Tensor,
        backbone: Backbone,
        generator: torch.Generator | None = None,
    ) -> Artifact: ...


def uniform_range(
    low: float, high: float, n: int, generator: torch.Generator | None, device: torch.device
) -> torch.Tensor:
    """(n,) draws from U(low, high) (a point when low == high)."""
    if not 0 <= low <= high:
        raise ValueError(f"need 0 <= low <= high, got [{low}, {high}]")
    return low + (high - low) * torch.rand(n, generator=generator, device=device)


def finish(x_tilde: torch.Tensor, x0: torch.Tensor, visible: torch.Tensor) -> Artifact:
    """Labels against the clean tokens; scored = visible maskable positions."""
    return Artifact(x=x_tilde, labels=x_tilde == x0, scored=visible)
