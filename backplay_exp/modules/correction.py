"""Correction-head training: head-only (BackPlay) and the joint ablation (PRISM/RemeDi-like).

METHOD.md section 5. `task=head`: the SFT backbone is frozen (eval mode, no grad, out of the
optimiser) and only the head learns, with BCE on artifacts drawn from the frozen model's own
errors. `task=joint`: backbone and head learn together on `L_sft + λ · L_bce`, the artifacts
coming from the current model (detached). Both share every step but the one that differs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch
from torch import nn
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR
from torchmetrics.classification import BinaryAUROC, BinaryAveragePrecision

from backplay_exp.artifacts.base import Artifact, ArtifactDistribution
from backplay_exp.artifacts.loader import frozen_passes
from backplay_exp.backbones.base import Backbone
from backplay_exp.backbones.lora import has_lora
from backplay_exp.diffusion import head_bce_loss
from backplay_exp.modules.base import TrainingModule, corrupt_batch, sft_plus


class HeadModule(TrainingModule):
    """Head-only training on a frozen backbone.

    Args:
        backbone: The SFT backbone (frozen here).
        head: The correction head.
        artifact: The artifact distribution (config group `artifact`).
        optimizer: Partial optimiser (given only the head's parameters).
        scheduler: Partial LR schedule or None.
        eos_maskable: EoS rule of the SFT stage (which positions artifacts may touch).
        pos_weight: Optional BCE weight of the "correct" class (METHOD.md: null).
        frozen_autocast: Run the frozen backbone's passes (the artifact's prediction and the
            tapped hidden state) under autocast to this dtype, e.g. "bfloat16"; None: as the
            trainer's precision says. The head itself trains in the trainer's precision.
        artifact_reuse: Train this many consecutive steps on one artifact batch and its frozen
            passes (1: a fresh artifact every step, the paper's); the frozen passes are half a
            toy head step, so 2 trains as many steps in about 3/4 of the time.
    """

    freeze_backbone = True

    def __init__(
        self,
        backbone: Backbone,
        head: nn.Module,
        artifact: ArtifactDistribution,
        optimizer: Callable[..., Optimizer],
        scheduler: Callable[..., LambdaLR] | None,
        eos_maskable: int | None,
        pos_weight: float | None,
        frozen_autocast: str | None,
        artifact_reuse: int = 1,
    ) -> None:
        super().__init__(optimizer, scheduler)
        self.save_hyperparameters(ignore=["backbone", "head", "artifact", "optimizer", "scheduler"])
        self.backbone, self.head, self.artifact = backbone, head, artifact
        self.eos_maskable, self.pos_weight = eos_maskable, pos_weight
        if frozen_autocast is not None and not self.freeze_backbone:
            raise ValueError("frozen_autocast applies to a frozen backbone only (head-only)")
        if artifact_reuse < 1 or (artifact_reuse > 1 and not self.freeze_backbone):
            raise ValueError(
                f"artifact_reuse={artifact_reuse}: must be >= 1, and 1 when the backbone trains"
            )
        self.artifact_reuse = artifact_reuse
        self._reused: dict[str, torch.Tensor] | None = None  # the frozen passes being reused
        self.frozen_dtype = None if frozen_autocast is None else getattr(torch, frozen_autocast)
        if self.freeze_backbone:
            self.backbone.requires_grad_(False).eval()
        elif not has_lora(self.backbone):  # LoRA already chose what trains
            self.backbone.requires_grad_(True)
        self.val_auroc, self.val_ap = BinaryAUROC(), BinaryAveragePrecision()

    def train(self, mode: bool = True) -> HeadModule:
        """Switch modes, keeping a frozen backbone in eval mode."""
        super().train(mode)
        if self.freeze_backbone:
            self.backbone.eval()
        return self

    def trainable_parameters(self) -> Iterator[nn.Parameter]:
        """The head only (the backbone never reaches the optimiser)."""
        if self.freeze_backbone:
            return iter(self.head.parameters())
        return super().trainable_parameters()

    def make_artifact(self, batch: dict[str, torch.Tensor]) -> Artifact:
        """Corrupt a clean batch with the model's own predictions (no gradient)."""
        return corrupt_batch(self.artifact, self.backbone, batch, self.eos_maskable)

    def frozen(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The frozen backbone's passes on a clean batch: artifact `x`, labels, hidden states."""
        return frozen_passes(
            self.backbone, self.artifact, batch, self.eos_maskable, self.frozen_dtype
        )

    def head_logits(self, x: torch.Tensor) -> torch.Tensor:
        """Head logits (B, L) on `x`; the frozen backbone runs under no_grad.

        Only the tapped hidden state is computed (`Backbone.hidden_states`): the blocks after
        the tap and the LM head do not reach the head's loss, frozen or not.
        """
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.freeze_backbone):
            hidden = self.backbone.hidden_states(x)
        return self.head(hidden)

    def head_loss(
        self, batch: dict[str, torch.Tensor]
    ) -> tuple[torch.Tensor, Artifact, torch.Tensor]:
        """BCE of the head on a fresh artifact: (loss, artifact, logits).

        `batch` is clean (the artifact and the backbone's passes are made here) or, for a
        frozen backbone, already through `frozen_passes` (`ArtifactBatches`, in a worker).
        """
        if self.freeze_backbone:
            if "hidden" not in batch:
                batch = self.frozen(batch)
            art = Artifact(batch["x"], batch["labels"], batch["scored"])
            logits = self.head(batch["hidden"])
        else:
            art = self.make_artifact(batch)
            logits = self.head_logits(art.x)
        return head_bce_loss(logits, art.labels, art.scored, self.pos_weight), art, logits

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        """One head step (on the artifact batch of an earlier step, with `artifact_reuse`)."""
        if self.artifact_reuse > 1:
            if self._reused is None or batch_idx % self.artifact_reuse == 0:
                self._reused = batch if "hidden" in batch else self.frozen(batch)
            batch = self._reused
        loss, art, _ = self.head_loss(batch)
        n = len(art.x)
        self.log("train/bce", loss, prog_bar=True, batch_size=n)
        self.log(
            "train/artifact_error_rate", 1 - art.labels[art.scored].float().mean(), batch_size=n
        )
        return loss

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        """BCE, AUROC and AP of the error probability on held-out artifacts."""
        loss, art, logits = self.head_loss(batch)
        err_prob = 1 - torch.sigmoid(logits[art.scored].float())
        is_error = (~art.labels[art.scored]).long()
        self.val_auroc.update(err_prob, is_error)
        self.val_ap.update(err_prob, is_error)
        n = len(art.x)
        self.log("val/bce", loss, prog_bar=True, batch_size=n)
        self.log("val/artifact_error_rate", is_error.float().mean(), batch_size=n)
        self.log("val/head_auroc", self.val_auroc, prog_bar=True, batch_size=n)
        self.log("val/head_ap", self.val_ap, batch_size=n)


class JointModule(HeadModule):
    """Joint ablation: backbone and head trained on `L_sft + bce_weight · L_bce`.

    Args:
        backbone: The backbone, trained too.
        head: The correction head.
        artifact: Artifacts from the current model (generated without gradient).
        optimizer: Partial optimiser (given backbone and head parameters).
        scheduler: Partial LR schedule or None.
        eos_maskable: EoS rule of the SFT loss.
        pos_weight: Optional BCE positive-class weight.
        bce_weight: λ (the paper sweeps it).
        eps: Floor of the SFT masking probability.
    """

    freeze_backbone = False

    def __init__(
        self,
        backbone: Backbone,
        head: nn.Module,
        artifact: ArtifactDistribution,
        optimizer: Callable[..., Optimizer],
        scheduler: Callable[..., LambdaLR] | None,
        eos_maskable: int | None,
        pos_weight: float | None,
        bce_weight: float,
        eps: float,
    ) -> None:
        super().__init__(
            backbone, head, artifact, optimizer, scheduler, eos_maskable, pos_weight, None
        )
        self.bce_weight, self.eps = bce_weight, eps

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        """`L_sft + λ · L_bce`; the BCE gradient also reaches the backbone."""
        return sft_plus(self, batch, super().training_step(batch, batch_idx), self.bce_weight)
