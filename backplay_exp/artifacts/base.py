"""What an artifact distribution returns, and helpers shared by the distributions.

An artifact is a corrupted training sequence for the correction head: `x̃` (B, L), its labels
(True where the token equals the clean one) and the positions that are scored (visible maskable
response tokens; the prompt, the masks and the never-maskable EoS tail are excluded).
METHOD.md section 4.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
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


@dataclass(frozen=True)
class Clean:
    """A clean batch to corrupt: `x0` (B, L), `maskable` (B, L) bool, the model, the randomness."""

    x0: torch.Tensor
    maskable: torch.Tensor
    backbone: Backbone
    generator: torch.Generator | None

    def logits(self, tokens: torch.Tensor) -> torch.Tensor:
        """The model's logits (B, L, V) of `tokens` (B, L)."""
        return self.backbone(tokens).logits


class RangedArtifact(ABC):
    """An artifact distribution whose knobs are drawn per row from uniform ranges.

    `ranges` maps each knob to its `(low, high)`; the knobs are drawn in that order, one value
    per row, and passed to `corrupt` by name.
    """

    name: str
    ranges: dict[str, tuple[float, float]]

    def __call__(
        self,
        x0: torch.Tensor,
        maskable: torch.Tensor,
        backbone: Backbone,
        generator: torch.Generator | None = None,
    ) -> Artifact:
        """Draw the knobs per row and corrupt the clean batch `x0` (B, L)."""
        b, dev = x0.shape[0], x0.device
        knobs = {k: uniform_range(lo, hi, b, generator, dev) for k, (lo, hi) in self.ranges.items()}
        return self.corrupt(Clean(x0, maskable, backbone, generator), **knobs)

    @abstractmethod
    def corrupt(self, clean: Clean, **knobs: torch.Tensor) -> Artifact:
        """Corrupt `clean` with the drawn knobs, (B,) each."""
