"""Token-editor (T2T) training: `L_sft + μ · CE_edit` (the T2T paper; METHOD.md section 5).

`task=t2t` continues training the SFT backbone (fully on `tiny`, or its LoRA adapters with
`t2t.lora`) so that its logits at a *visible* position say what that token should be. Each step
corrupts the clean batch with the artifact distribution (`draft`: the current model's own argmax
fills a masked `x_t` in one no-grad pass; `random_vocab`: uniform vocabulary noise), and
`CE_edit` is the cross-entropy of the backbone's logits on the corrupted sequence against `x0` at
the artifact's scored positions. `L_sft` keeps mask-to-token decoding intact.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR

from backplay_exp.artifacts.base import Artifact, ArtifactDistribution
from backplay_exp.backbones.base import Backbone
from backplay_exp.modules.base import TrainingModule, corrupt_batch, sft_objective, sft_plus


def edit_loss(logits: torch.Tensor, x0: torch.Tensor, scored: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of `logits` (B, L, V) against `x0` (B, L) at `scored` (B, L)."""
    if not scored.any():
        return logits.sum() * 0.0
    return F.cross_entropy(logits[scored].float(), x0[scored])


class EditModule(TrainingModule):
    """The T2T editor: the backbone learns to restore corrupted visible tokens.

    Args:
        backbone: The SFT backbone (its LoRA adapters only, if LoRA was applied).
        artifact: `draft` (the paper) or `random_vocab` (LLaDA2.1's recipe).
        optimizer: Partial optimiser.
        scheduler: Partial LR schedule or None.
        eps: Floor of the SFT masking probability.
        eos_maskable: EoS rule of the SFT stage.
        edit_weight: μ, the weight of `CE_edit`.
    """

    def __init__(
        self,
        backbone: Backbone,
        artifact: ArtifactDistribution,
        optimizer: Callable[..., Optimizer],
        scheduler: Callable[..., LambdaLR] | None,
        eps: float,
        eos_maskable: int | None,
        edit_weight: float,
    ) -> None:
        super().__init__(optimizer, scheduler)
        self.save_hyperparameters(ignore=["backbone", "artifact", "optimizer", "scheduler"])
        self.backbone, self.artifact = backbone, artifact
        self.eps, self.eos_maskable, self.edit_weight = eps, eos_maskable, edit_weight

    def make_artifact(self, batch: dict[str, torch.Tensor]) -> Artifact:
        """Corrupt a clean batch (the draft pass runs without gradient)."""
        return corrupt_batch(self.artifact, self.backbone, batch, self.eos_maskable)

    def edit_step(self, batch: dict[str, torch.Tensor], stage: str) -> torch.Tensor:
        """`CE_edit` on a fresh artifact, with what the editor gets right logged."""
        x0, n = batch["input_ids"], len(batch["input_ids"])
        art = self.make_artifact(batch)
        logits = self.backbone(art.x).logits  # (B, L, V)
        loss = edit_loss(logits, x0, art.scored)
        with torch.no_grad():
            right = logits.argmax(-1) == x0
            wrong, kept = art.scored & ~art.labels, art.scored & art.labels
            self.log(f"{stage}/edit_ce", loss, prog_bar=True, batch_size=n)
            self.log(f"{stage}/artifact_error_rate", _rate(wrong, art.scored), batch_size=n)
            # corrupted tokens whose prediction is the clean token / clean tokens kept
            self.log(f"{stage}/edit_fix_rate", _rate(right & wrong, wrong), batch_size=n)
            self.log(f"{stage}/edit_keep_rate", _rate(right & kept, kept), batch_size=n)
        return loss

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        """`L_sft + μ · CE_edit`."""
        return sft_plus(self, batch, self.edit_step(batch, "train"), self.edit_weight)

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        """Held-out `CE_edit`, fix and keep rates, and the SFT loss."""
        self.edit_step(batch, "val")
        sft = sft_objective(
            self.backbone, batch["input_ids"], batch["response_mask"], self.eps, self.eos_maskable
        )
        self.log("val/sft_loss", sft, batch_size=len(batch["input_ids"]))


def _rate(hits: torch.Tensor, of: torch.Tensor) -> torch.Tensor:
    return hits.sum().float() / of.sum().clamp(min=1)
