"""Head-training batches with the frozen backbone's passes done in worker processes.

Wraps the clean datamodule of a head-only stage: every batch it yields is already an artifact
with the tapped hidden states (`artifacts/loader.py`), so the head's step in the main process
only runs the head. Validation batches come from a worker too, with their own generator.
"""

from __future__ import annotations

import lightning as L
import torch
from torch.utils.data import DataLoader

from backplay_exp.artifacts.base import ArtifactDistribution
from backplay_exp.artifacts.loader import ArtifactBatches
from backplay_exp.backbones.base import Backbone

# the validation worker's generator is seeded apart from the training workers'
VAL_SEED_OFFSET = 1_000_003


class FrozenArtifactData(L.LightningDataModule):
    """`clean`'s batches through the frozen backbone, in `workers` worker processes.

    Args:
        clean: The stage's datamodule of clean batches.
        backbone: The frozen backbone.
        artifact: The artifact distribution.
        eos_maskable: EoS rule of the SFT stage.
        dtype: Autocast dtype of the frozen passes (None: as the weights are).
        seed: Seed of the workers' artifact generators.
        workers: Worker processes for the training batches (one thread each).
    """

    def __init__(
        self,
        clean: L.LightningDataModule,
        backbone: Backbone,
        artifact: ArtifactDistribution,
        eos_maskable: int | None,
        dtype: torch.dtype | None,
        seed: int,
        workers: int,
    ) -> None:
        super().__init__()
        if workers < 1:
            raise ValueError(f"FrozenArtifactData needs at least one worker, got {workers}")
        self.clean, self.workers, self.seed = clean, workers, seed
        self.passes = (backbone, artifact, eos_maskable, dtype)

    def setup(self, stage: str | None = None) -> None:
        """Set up the clean datamodule."""
        self.clean.setup(stage)

    def train_dataloader(self) -> DataLoader:
        """Artifact batches from persistent workers (their generators run on across epochs)."""
        batches = ArtifactBatches(self.clean.train_dataloader(), *self.passes, self.seed)
        return DataLoader(
            batches, batch_size=None, num_workers=self.workers, persistent_workers=True
        )

    def val_dataloader(self) -> DataLoader:
        """Held-out artifact batches from a worker started anew at every validation.

        Its generator starts from the same seed each time, so every validation scores the
        head on the same artifacts.
        """
        batches = ArtifactBatches(
            self.clean.val_dataloader(), *self.passes, self.seed + VAL_SEED_OFFSET
        )
        return DataLoader(batches, batch_size=None, num_workers=1)
