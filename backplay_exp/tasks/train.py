"""Training tasks (`task=sft`, and the stage that eval jobs resolve): fit a module, export it.

`python -m backplay_exp task=sft` trains the SFT stage of the current config into the stage
cache (or finds it there) and records where it is in the run's `results.json`.
"""

from __future__ import annotations

import logging
import time
from functools import partial
from pathlib import Path
from typing import Any

import lightning as L
from hydra.utils import instantiate
from lightning.pytorch.callbacks import ModelCheckpoint
from omegaconf import DictConfig

from backplay_exp.backbones.base import Backbone, load_backbone
from backplay_exp.tasks.results import write_results
from backplay_exp.tasks.stages import ensure_stage, signature
from backplay_exp.utils.instantiate import instantiate_loggers

log = logging.getLogger(__name__)


def fit(
    cfg: DictConfig, recipe: DictConfig, module: L.LightningModule, datamodule: Any, out: Path
) -> dict[str, float]:
    """Fit `module` for `recipe.max_steps`, checkpointing to `out/checkpoints` and resuming.

    Raises:
        RuntimeError: if training was interrupted (the stage must not be marked done).
    """
    ckpt_dir = out / "checkpoints"
    checkpoint = ModelCheckpoint(
        dirpath=ckpt_dir, save_last=True, every_n_train_steps=recipe.checkpoint_every
    )
    trainer: L.Trainer = instantiate(
        cfg.trainer,
        max_steps=recipe.max_steps,
        gradient_clip_val=recipe.gradient_clip_val,
        val_check_interval=recipe.val_check_interval,
        check_val_every_n_epoch=None,
        callbacks=[checkpoint],
        logger=instantiate_loggers(cfg.logger, out) or False,
        default_root_dir=str(out),
    )
    last = ckpt_dir / "last.ckpt"
    start = time.perf_counter()
    trainer.fit(module, datamodule=datamodule, ckpt_path=str(last) if last.exists() else None)
    if trainer.interrupted or trainer.global_step < recipe.max_steps:
        raise RuntimeError(
            f"training stopped at step {trainer.global_step}/{recipe.max_steps}; "
            "run the same command again to resume from its last checkpoint"
        )
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
    return metrics | {"train_s": time.perf_counter() - start, "steps": trainer.global_step}


def sft_stage_dir(cfg: DictConfig) -> Path:
    """Where the SFT stage of this config lives in the cache."""
    sig = signature("sft", cfg.backbone, cfg.data, cfg.sft, cfg.seed, cfg.trainer.precision)
    return Path(cfg.paths.cache_dir) / "sft" / sig


def train_sft(cfg: DictConfig, out: Path) -> dict[str, float]:
    """Train the SFT stage into `out` and export the backbone to `out/backbone`."""
    L.seed_everything(cfg.seed, workers=True)
    backbone: Backbone = instantiate(cfg.backbone)
    datamodule = instantiate(cfg.data, tokenizer=backbone.tokenizer)
    module = instantiate(cfg.sft.module, backbone=backbone)
    metrics = fit(cfg, cfg.sft, module, datamodule, out)
    backbone.save(out / "backbone", cfg.backbone)
    return metrics


def sft_backbone(cfg: DictConfig) -> tuple[Backbone, str]:
    """The backbone an eval or head job starts from, and where it came from.

    `sft.checkpoint` is `auto` (the cached SFT stage, trained if missing), `pretrained` (the
    backbone's own weights, e.g. an instruct model), or the path of a saved backbone. The
    returned source is `sft/<signature>` for a cached stage, so it is the same on every machine.
    """
    ckpt = str(cfg.sft.checkpoint)
    if ckpt == "pretrained":
        return instantiate(cfg.backbone), "pretrained"
    if ckpt == "auto":
        stage = ensure_stage(sft_stage_dir(cfg), partial(train_sft, cfg))
        return load_backbone(stage / "backbone"), f"sft/{stage.name}"
    return load_backbone(ckpt), ckpt


def run_sft(cfg: DictConfig, **_: Any) -> dict[str, float]:
    """`task=sft`: make sure the SFT stage exists; report its metrics."""
    stage = ensure_stage(sft_stage_dir(cfg), partial(train_sft, cfg))
    metrics = load_stage_metrics(stage)
    write_results(cfg, {"task": "sft", "stage_dir": str(stage), **metrics})
    return metrics


def load_stage_metrics(stage: Path) -> dict[str, float]:
    """The metrics a finished stage recorded in its `done.json`."""
    import json

    return json.loads((stage / "done.json").read_text())
