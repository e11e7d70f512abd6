"""Training stages: SFT, head-only (BackPlay), joint and T2T; each cached by its config signature.

    python -m backplay_exp task=sft      # the SFT stage of this config
    python -m backplay_exp task=head     # SFT stage (if missing) -> frozen backbone -> head
    python -m backplay_exp task=joint    # backbone + head trained together (ablation)
    python -m backplay_exp task=t2t artifact=draft   # the T2T editor, continued from the SFT model

Each task makes sure its stage exists in the cache (training it if missing, resuming if it was
interrupted) and records the stage and its metrics in the run's `results.json`. What a stage is
named by, what it needs and what it exports is its entry in `tasks/registry.py`; this module holds
only how each kind trains: `train_<kind>(cfg, out) -> metrics`.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any

import lightning as L
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from backplay_exp.backbones.base import Backbone
from backplay_exp.backbones.lora import apply_lora, merge_lora
from backplay_exp.data.artifacts import FrozenArtifactData
from backplay_exp.heads.io import save_head
from backplay_exp.modules.correction import HeadModule
from backplay_exp.tasks.fit import backbone_name, count, fit
from backplay_exp.tasks.registry import (
    load_stage_backbone,
    resolve,
    run_stage,
    stage_trainer,
)

log = logging.getLogger(__name__)


def run_sft(cfg: DictConfig, **_: Any) -> dict[str, float]:
    """`task=sft`: make sure the SFT stage exists; report its metrics."""
    return run_stage(cfg, "sft")


def run_head(cfg: DictConfig, **_: Any) -> dict[str, Any]:
    """`task=head`: make sure the head stage exists; report its metrics (AUROC, AP, BCE)."""
    return run_stage(cfg, "head")


def run_joint(cfg: DictConfig, **_: Any) -> dict[str, Any]:
    """`task=joint`: make sure the joint stage exists; report its metrics."""
    return run_stage(cfg, "joint")


def run_t2t(cfg: DictConfig, **_: Any) -> dict[str, Any]:
    """`task=t2t`: make sure the T2T editor stage exists; report its metrics."""
    return run_stage(cfg, "t2t")


def train_sft(cfg: DictConfig, out: Path) -> dict[str, float]:
    """Train the SFT stage into `out` and export the backbone to `out/backbone`."""
    L.seed_everything(cfg.seed, workers=True)
    backbone: Backbone = instantiate(cfg.backbone)
    datamodule = instantiate(cfg.data, tokenizer=backbone.tokenizer)
    module = instantiate(cfg.sft.module, backbone=backbone)
    log.info(
        "SFT: fine-tuning %s (%s parameters) with the masked-diffusion loss, %d steps",
        backbone_name(backbone),
        count(backbone.parameters()),
        cfg.sft.max_steps,
    )
    metrics = fit(cfg, cfg.sft, module, datamodule, out, "SFT")
    backbone.save(out / "backbone", cfg.backbone)
    return metrics


def train_head(cfg: DictConfig, out: Path) -> dict[str, Any]:
    """Train a head on the SFT backbone, frozen; record that the backbone did not change."""
    L.seed_everything(cfg.seed, workers=True)
    backbone = load_stage_backbone(cfg, resolve(cfg, "sft"))
    return train_correction(cfg, out, backbone, joint=False)


def train_joint(cfg: DictConfig, out: Path) -> dict[str, Any]:
    """Train a head with a fresh backbone (LoRA where the recipe has it); export both."""
    L.seed_everything(cfg.seed, workers=True)
    backbone = with_lora(instantiate(cfg.backbone), cfg.joint)
    return train_correction(cfg, out, backbone, joint=True)


def train_correction(cfg: DictConfig, out: Path, backbone: Backbone, joint: bool) -> dict[str, Any]:
    """Train a correction head on `backbone` (frozen, or if `joint` trained with it)."""
    recipe = cfg.joint if joint else cfg.head_train
    head_cfg = OmegaConf.merge(cfg.head, {"d_in": backbone.hidden_size})
    head = instantiate(head_cfg)
    module = instantiate(
        recipe.module, backbone=backbone, head=head, artifact=instantiate(cfg.artifact)
    )
    datamodule = instantiate(cfg.data, tokenizer=backbone.tokenizer)
    workers = 0 if joint else int(recipe.artifact_workers)
    if workers:
        datamodule = frozen_artifact_data(cfg, module, datamodule, workers)
    before = weights_digest(backbone)
    log.info(
        "%s: training a %s-parameter correction head on %s's %s artifacts, %d steps",
        "joint" if joint else "head",
        count(head.parameters()),
        f"the {'fresh' if joint else 'frozen SFT'} {backbone_name(backbone)}",
        module.artifact.name,
        recipe.max_steps,
    )
    description = "joint" if joint else "head"
    threads = max(1, torch.get_num_threads() - workers) if workers else None
    metrics: dict[str, Any] = dict(fit(cfg, recipe, module, datamodule, out, description, threads))
    save_head(head, out / "head", head_cfg)
    if joint:
        merge_lora(backbone).save(out / "backbone", cfg.backbone)
    else:
        metrics["backbone_unchanged"] = weights_digest(backbone) == before
    metrics["head_params"] = sum(p.numel() for p in head.parameters())
    return metrics


def train_t2t(cfg: DictConfig, out: Path) -> dict[str, Any]:
    """Continue the SFT backbone on `L_sft + μ·CE_edit`; export the (merged) editor backbone."""
    L.seed_everything(cfg.seed, workers=True)
    backbone = with_lora(load_stage_backbone(cfg, resolve(cfg, "sft")), cfg.t2t)
    module = instantiate(cfg.t2t.module, backbone=backbone, artifact=instantiate(cfg.artifact))
    datamodule = instantiate(cfg.data, tokenizer=backbone.tokenizer)
    log.info(
        "T2T: continuing %s on L_sft + μ·CE_edit, %d steps",
        backbone_name(backbone),
        cfg.t2t.max_steps,
    )
    metrics = fit(cfg, cfg.t2t, module, datamodule, out, "T2T editor")
    merge_lora(backbone).save(out / "backbone", cfg.backbone)
    return metrics


def weights_digest(module: torch.nn.Module) -> str:
    """SHA-256 of every parameter and buffer's bytes (to prove a frozen model unchanged)."""
    digest = hashlib.sha256()
    for name, value in sorted(module.state_dict().items()):
        digest.update(name.encode())
        digest.update(value.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def frozen_artifact_data(
    cfg: DictConfig, module: HeadModule, clean: L.LightningDataModule, workers: int
) -> FrozenArtifactData:
    """`clean` with the frozen backbone's passes moved into `workers` CPU worker processes.

    Raises:
        ValueError: on an accelerator other than the CPU (a forked worker cannot use CUDA).
    """
    accelerator = stage_trainer(cfg, cfg.head_train).accelerator
    if accelerator != "cpu":
        raise ValueError(
            "head_train.artifact_workers runs the frozen backbone in forked CPU processes: use "
            f"it with trainer=cpu or set it to 0 (the head's trainer.accelerator={accelerator})"
        )
    return FrozenArtifactData(
        clean,
        module.backbone,
        module.artifact,
        module.eos_maskable,
        module.frozen_dtype,
        cfg.seed,
        workers,
    )


def with_lora(backbone: Backbone, recipe: DictConfig) -> Backbone:
    """Inject the recipe's LoRA adapters (`recipe.lora`), if it has any; else train fully."""
    lora = recipe.get("lora")
    if lora is None:
        return backbone
    return apply_lora(backbone, OmegaConf.to_container(lora, resolve=True))
