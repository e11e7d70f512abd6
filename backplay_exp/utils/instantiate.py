"""Builders for the Lightning pieces that configs describe as collections (loggers)."""

from __future__ import annotations

from pathlib import Path

from hydra.utils import instantiate
from lightning.pytorch.loggers import Logger
from omegaconf import DictConfig


def instantiate_loggers(cfg: DictConfig | None, save_dir: str | Path) -> list[Logger]:
    """Build every logger of the `logger` group option, writing under `save_dir`."""
    if not cfg:
        return []
    return [instantiate(node, save_dir=str(save_dir)) for node in cfg.values() if node]
