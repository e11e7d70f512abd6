"""Shared pieces of the LightningModules: the SFT objective, optimiser and LR schedule.

Each module (SFT, head-only, joint, T2T) is a thin shell over pure functions; the step that
masks a clean batch and scores the backbone on it lives here once, so SFT and the joint ablation
compute `L_sft` with the same code.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

import lightning as L
import torch
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR

from backplay_exp.artifacts.base import Artifact, ArtifactDistribution
from backplay_exp.backbones.base import Backbone
from backplay_exp.diffusion import mask_tokens, maskable_positions, sample_mask_prob, sft_loss


def warmup_cosine(
    optimizer: Optimizer, total_steps: int, warmup_ratio: float, min_lr_ratio: float
) -> LambdaLR:
    """Linear warmup over `warmup_ratio * total_steps`, then cosine decay to `min_lr_ratio`."""
    warmup = max(1, round(warmup_ratio * total_steps))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = min(1.0, (step - warmup) / max(1, total_steps - warmup))
        return min_lr_ratio + (1 - min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))

    return LambdaLR(optimizer, factor)


def corrupt_batch(
    artifact: ArtifactDistribution,
    backbone: Backbone,
    batch: dict[str, torch.Tensor],
    eos_maskable: int | None,
) -> Artifact:
    """Corrupt a clean batch with `artifact` (model calls without gradient; METHOD.md s. 4)."""
    x0 = batch["input_ids"]
    maskable = maskable_positions(x0, batch["response_mask"], backbone.eos_id, eos_maskable)
    with torch.no_grad():
        return artifact(x0, maskable, backbone)


def sft_objective(
    backbone: Backbone,
    x0: torch.Tensor,
    response: torch.Tensor,
    eps: float,
    eos_maskable: int | None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Mask a clean batch and return the SFT loss of `backbone` on it (METHOD.md section 2).

    Args:
        backbone: The DLM being trained.
        x0: (B, L) clean prompt + response tokens.
        response: (B, L) bool, True at response positions.
        eps: Floor of the masking probability.
        eos_maskable: EoS tokens after the answer that stay maskable (None = all).
        generator: Explicit randomness.
    """
    maskable = maskable_positions(x0, response, backbone.eos_id, eos_maskable)
    p_mask = sample_mask_prob(x0.shape[0], eps, generator, device=x0.device)
    xt, mask = mask_tokens(x0, maskable, p_mask, backbone.mask_id, generator)
    logits = backbone(xt).logits  # (B, L, V)
    return sft_loss(logits, x0, mask, p_mask, maskable)


def sft_plus(
    module: L.LightningModule, batch: dict[str, torch.Tensor], aux: torch.Tensor, weight: float
) -> torch.Tensor:
    """`L_sft + weight * aux` on a clean batch, both logged (the joint and T2T objectives).

    `module` has the `backbone`, `eps` and `eos_maskable` of `sft_objective`.
    """
    x0, response = batch["input_ids"], batch["response_mask"]
    sft = sft_objective(module.backbone, x0, response, module.eps, module.eos_maskable)
    module.log("train/sft_loss", sft, batch_size=len(x0))
    loss = sft + weight * aux
    module.log("train/loss", loss, prog_bar=True, batch_size=len(x0))
    return loss


class TrainingModule(L.LightningModule):
    """Optimiser/scheduler plumbing shared by every module: subclasses say what trains.

    Args:
        optimizer: Partial optimiser (completed with the trainable parameters).
        scheduler: Partial LR schedule (completed with the optimiser and total steps), or None.
    """

    def __init__(
        self,
        optimizer: Callable[..., Optimizer],
        scheduler: Callable[..., LambdaLR] | None,
    ) -> None:
        super().__init__()
        self.optimizer_factory, self.scheduler_factory = optimizer, scheduler

    def trainable_parameters(self) -> Iterable[torch.nn.Parameter]:
        """What the optimiser holds (override to freeze parts)."""
        return (p for p in self.parameters() if p.requires_grad)

    def configure_optimizers(self) -> dict:
        """The optimiser over `trainable_parameters()` and a per-step LR schedule."""
        optimizer = self.optimizer_factory(params=list(self.trainable_parameters()))
        if self.scheduler_factory is None:
            return {"optimizer": optimizer}
        total = int(self.trainer.estimated_stepping_batches)
        scheduler = self.scheduler_factory(optimizer=optimizer, total_steps=total)
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "step"},
        }
