"""Artifacts made beside head training: the frozen backbone's passes in DataLoader workers.

Head-only training (METHOD.md section 5) runs the frozen backbone twice per step, once for the
artifact's predictions and once for the tapped hidden states the head reads; neither depends on
the head. `ArtifactBatches` runs both in worker processes while the head trains on the previous
batch in the main process: on a CPU, two one-thread processes instead of one two-thread process,
which also keeps its pace when another program takes a core (a two-thread step then waits for
the busy core at every operation). Each worker draws its artifacts from its own seeded
generator, so a run repeats exactly.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager, nullcontext

import torch
from torch.utils.data import IterableDataset, get_worker_info

from backplay_exp.artifacts.base import ArtifactDistribution
from backplay_exp.backbones.base import Backbone
from backplay_exp.diffusion import maskable_positions


def frozen_autocast(device: torch.device, dtype: torch.dtype | None) -> AbstractContextManager:
    """Autocast to `dtype` on `device`'s type, or nothing (None)."""
    return nullcontext() if dtype is None else torch.autocast(device.type, dtype=dtype)


@torch.no_grad()
def frozen_passes(
    backbone: Backbone,
    artifact: ArtifactDistribution,
    batch: dict[str, torch.Tensor],
    eos_maskable: int | None,
    dtype: torch.dtype | None = None,
    generator: torch.Generator | None = None,
) -> dict[str, torch.Tensor]:
    """An artifact of a clean batch and the frozen backbone's tapped hidden states on it.

    Args:
        backbone: The frozen backbone.
        artifact: The artifact distribution.
        batch: `input_ids` (B, L) clean tokens and `response_mask` (B, L) bool.
        eos_maskable: EoS rule of the SFT stage.
        dtype: Autocast dtype of both passes (None: as the weights are).
        generator: The artifact's randomness (None: torch's global generator).

    Returns:
        `x` (B, L) artifact tokens, `labels` (B, L) bool, `scored` (B, L) bool and `hidden`
        (B, L, D) float32.
    """
    x0 = batch["input_ids"]
    maskable = maskable_positions(x0, batch["response_mask"], backbone.eos_id, eos_maskable)
    with frozen_autocast(x0.device, dtype):
        art = artifact(x0, maskable, backbone, generator)
        hidden = backbone.hidden_states(art.x)  # (B, L, D)
    return {"x": art.x, "labels": art.labels, "scored": art.scored, "hidden": hidden.float()}


class ArtifactBatches(IterableDataset):
    """Clean batches -> `frozen_passes` batches, computed in the DataLoader's workers.

    Worker `i` of `n` takes batches `i, i + n, ...` of `clean`, so the loader yields them in
    `clean`'s order.

    Args:
        clean: The clean batches (the datamodule's loader, iterated inside the worker).
        backbone: The frozen backbone (shared with the workers by fork).
        artifact: The artifact distribution.
        eos_maskable: EoS rule of the SFT stage.
        dtype: Autocast dtype of the frozen passes (None: as the weights are).
        seed: Seed of the workers' artifact generators (worker `i` uses `seed + i`).
    """

    def __init__(
        self,
        clean: Iterable[dict[str, torch.Tensor]],
        backbone: Backbone,
        artifact: ArtifactDistribution,
        eos_maskable: int | None,
        dtype: torch.dtype | None,
        seed: int,
    ) -> None:
        super().__init__()
        self.clean, self.backbone, self.artifact = clean, backbone, artifact
        self.eos_maskable, self.dtype, self.seed = eos_maskable, dtype, seed
        self.generator: torch.Generator | None = None

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        """This worker's share of the batches, each through the frozen passes."""
        info = get_worker_info()
        worker, workers = (0, 1) if info is None else (info.id, info.num_workers)
        if self.generator is None:  # once per worker process: later epochs continue its stream
            self.generator = torch.Generator().manual_seed(self.seed + worker)
        for index, batch in enumerate(self.clean):
            if index % workers == worker:
                yield frozen_passes(
                    self.backbone,
                    self.artifact,
                    batch,
                    self.eos_maskable,
                    self.dtype,
                    self.generator,
                )
