"""SFT of the backbone with LLaDA's masked-diffusion loss and BackPlay's EoS rule.

METHOD.md section 2. Run: `python -m backplay_exp task=sft` (the quickstart runs it as a stage).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR

from backplay_exp.backbones.base import Backbone
from backplay_exp.modules.base import TrainingModule, sft_objective


class SFTModule(TrainingModule):
    """Trains every backbone parameter on `L_sft`.

    Args:
        backbone: The DLM to fine-tune.
        optimizer: Partial optimiser.
        scheduler: Partial LR schedule or None.
        eps: Floor of the masking probability (LLaDA: 1e-3).
        eos_maskable: EoS tokens after the answer that stay maskable (BackPlay: 16; None = all).
    """

    def __init__(
        self,
        backbone: Backbone,
        optimizer: Callable[..., Optimizer],
        scheduler: Callable[..., LambdaLR] | None,
        eps: float,
        eos_maskable: int | None,
    ) -> None:
        super().__init__(optimizer, scheduler)
        self.save_hyperparameters(ignore=["backbone", "optimizer", "scheduler"])
        self.backbone = backbone
        self.eps, self.eos_maskable = eps, eos_maskable

    def _loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return sft_objective(
            self.backbone, batch["input_ids"], batch["response_mask"], self.eps, self.eos_maskable
        )

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        """One SFT step on a clean batch."""
        loss = self._loss(batch)
        self.log("train/loss", loss, prog_bar=True, batch_size=len(batch["input_ids"]))
        return loss

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        """Held-out SFT loss (random masking, so a noisy but unbiased estimate)."""
        self.log("val/loss", self._loss(batch), prog_bar=True, batch_size=len(batch["input_ids"]))
