"""Lightning loggers as the configs build them (config group `logger`)."""

from __future__ import annotations

from typing import Any

from lightning.pytorch.loggers import WandbLogger as LightningWandbLogger


class WandbLogger(LightningWandbLogger):
    """Lightning's W&B logger, minus the `anonymous=None` it always forwards to `wandb.init`.

    wandb >= 0.19 answers any explicit `anonymous` (None included) with "The anonymous setting
    has no effect and will be removed in a future version" on every run; leaving the key out
    when it was not asked for passes what wandb expects. Every argument is Lightning's, but:

    Args:
        samples_table: Rows of an eval run's samples table (`tasks/tracking.py`).
        **kwargs: Lightning's WandbLogger arguments (and wandb.init's).
    """

    def __init__(self, samples_table: int = 64, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.samples_table = samples_table
        if self._wandb_init.get("anonymous") is None:
            self._wandb_init.pop("anonymous", None)

    def finish(self) -> None:
        """End the run, if one was started (Lightning leaves it open after `fit`)."""
        if self._experiment is not None:
            self._experiment.finish()
