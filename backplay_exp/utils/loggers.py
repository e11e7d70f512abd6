"""Lightning loggers as the configs build them (config group `logger`)."""

from __future__ import annotations

from typing import Any

from lightning.pytorch.loggers import WandbLogger as LightningWandbLogger


class WandbLogger(LightningWandbLogger):
    """Lightning's W&B logger, minus the `anonymous=None` it always forwards to `wandb.init`.

    wandb >= 0.19 answers any explicit `anonymous` (None included) with "The anonymous setting
    has no effect and will be removed in a future version" on every run; leaving the key out
    when it was not asked for passes what wandb expects. Every argument is Lightning's.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if self._wandb_init.get("anonymous") is None:
            self._wandb_init.pop("anonymous", None)
