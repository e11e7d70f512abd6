"""Builders for the Lightning pieces that configs describe as collections (loggers)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from hydra.utils import instantiate
from lightning.pytorch.loggers import Logger
from omegaconf import DictConfig


def instantiate_loggers(
    cfg: DictConfig | None,
    save_dir: str | Path,
    wandb: Callable[[DictConfig], Logger] | None = None,
) -> list[Logger]:
    """Build every logger of the `logger` group option, writing under `save_dir`.

    `wandb`, if given, builds the `wandb` logger from its node instead (the run's own name,
    group, config and directory: `tasks/tracking.py`).
    """
    if not cfg:
        return []
    return [
        wandb(node)
        if key == "wandb" and wandb is not None
        else instantiate(node, save_dir=str(save_dir))
        for key, node in cfg.items()
        if node
    ]
