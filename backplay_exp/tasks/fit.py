"""Fitting one stage with Lightning: its trainer, checkpoints, resume and progress bar.

Every training function of `tasks/train.py` ends in `fit`: the stage trains for its recipe's
`max_steps` into its cache directory, checkpointing to `checkpoints/last.ckpt` and resuming
from it when a run was interrupted (`tasks/checkpoint.py`: resumed, the stage trains what the
uninterrupted run would have).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import lightning as L
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig

from backplay_exp.backbones.base import Backbone
from backplay_exp.tasks.checkpoint import StepCheckpoint
from backplay_exp.tasks.registry import stage_trainer
from backplay_exp.tasks.results import output_dir
from backplay_exp.tasks.tracking import run_meta, wandb_logger
from backplay_exp.utils.console import fit_warnings
from backplay_exp.utils.device import torch_threads
from backplay_exp.utils.instantiate import instantiate_loggers
from backplay_exp.utils.loggers import WandbLogger
from backplay_exp.utils.progress import StepProgressBar


def fit(
    cfg: DictConfig,
    recipe: DictConfig,
    module: L.LightningModule,
    datamodule: Any,
    out: Path,
    description: str,
    threads: int | None = None,
) -> dict[str, float]:
    """Fit `module` for `recipe.max_steps`, checkpointing to `out/checkpoints` and resuming.

    `description` names the stage on its progress bar; `threads` (if given) is how many
    intra-op threads the training process uses meanwhile (the rest of the cores run the data
    workers).

    Raises:
        RuntimeError: if training was interrupted (the stage must not be marked done).
    """
    last = out / "checkpoints" / "last.ckpt"
    checkpoint = StepCheckpoint(last, recipe.checkpoint_every)
    trainer_cfg = stage_trainer(cfg, recipe)
    start = time.perf_counter()
    with torch_threads(threads), fit_warnings(getattr(module, "freeze_backbone", False)):
        trainer: L.Trainer = instantiate(
            trainer_cfg,
            max_steps=recipe.max_steps,
            gradient_clip_val=recipe.gradient_clip_val,
            val_check_interval=recipe.val_check_interval,
            check_val_every_n_epoch=None,
            callbacks=[checkpoint, *progress_bar(cfg, trainer_cfg, description)],
            enable_checkpointing=False,  # StepCheckpoint is the stage's only checkpoint
            logger=instantiate_loggers(cfg.logger, out, wandb=stage_run(cfg, out)) or False,
            default_root_dir=str(out),
        )
        resume = str(last) if last.exists() else None
        try:
            trainer.fit(module, datamodule=datamodule, ckpt_path=resume)
        finally:  # Lightning leaves a W&B run open: the eval after the stage would log into it
            for logger in trainer.loggers:
                if isinstance(logger, WandbLogger):
                    logger.finish()
    if trainer.interrupted or trainer.global_step < recipe.max_steps:
        raise RuntimeError(
            f"training stopped at step {trainer.global_step}/{recipe.max_steps}; "
            "run the same command again to resume from its last checkpoint"
        )
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
    return metrics | {"train_s": time.perf_counter() - start, "steps": trainer.global_step}


def stage_run(cfg: DictConfig, out: Path) -> Callable[[DictConfig], Any]:
    """Builds the stage's W&B logger: its run named for the stage, in the job's directory.

    The run's id is the stage's (`<kind>-<signature>`, from `out` = `<cache>/<kind>/<signature>`),
    so a stage resumed after a kill continues it; its files sit in the job's run directory
    with the sweep's other runs, not in the cache.
    """

    def build(node: DictConfig) -> Any:
        meta = run_meta(cfg, stage=(out.parent.name, out.name))
        return wandb_logger(node, output_dir(cfg), meta)

    return build


def progress_bar(
    cfg: DictConfig, trainer_cfg: DictConfig, description: str
) -> list[StepProgressBar]:
    """The stage's progress bar over its steps, redrawn every `progress_every` steps.

    None where the stage's trainer (`trainer_cfg`) disables progress bars.
    """
    if not trainer_cfg.get("enable_progress_bar", True):
        return []
    return [StepProgressBar(description, int(cfg.get("progress_every", 1)))]


def backbone_name(backbone: Backbone) -> str:
    """The backbone's short name (`tiny`, `smdm`, ...), else its class."""
    return getattr(backbone, "name", type(backbone).__name__)


def count(params: Iterable[torch.nn.Parameter]) -> str:
    """A parameter count for people: `0.37M`, `90k`."""
    n = sum(p.numel() for p in params)
    return f"{n / 1e6:.2f}M" if n >= 1e6 else f"{n / 1e3:.0f}k"
