"""Training stages: SFT, head-only (BackPlay), joint and T2T; each cached by its config signature.

    python -m backplay_exp task=sft      # the SFT stage of this config
    python -m backplay_exp task=head     # SFT stage (if missing) -> frozen backbone -> head
    python -m backplay_exp task=joint    # backbone + head trained together (ablation)
    python -m backplay_exp task=t2t artifact=draft   # the T2T editor, continued from the SFT model

Each task makes sure its stage exists in the cache (training it if missing, resuming if it was
interrupted) and records the stage and its metrics in the run's `results.json`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Iterable
from functools import partial
from pathlib import Path
from typing import Any

import lightning as L
import torch
from hydra.utils import instantiate
from lightning.pytorch.callbacks import ModelCheckpoint
from omegaconf import DictConfig, OmegaConf

from backplay_exp.backbones.base import Backbone, load_backbone
from backplay_exp.backbones.lora import apply_lora, merge_lora
from backplay_exp.data.artifacts import FrozenArtifactData
from backplay_exp.heads.io import save_head
from backplay_exp.modules.correction import HeadModule
from backplay_exp.tasks.results import write_results
from backplay_exp.tasks.stages import DONE_FILE, ensure_stage, signature
from backplay_exp.utils.console import fit_warnings
from backplay_exp.utils.device import torch_threads
from backplay_exp.utils.instantiate import instantiate_loggers
from backplay_exp.utils.progress import StepProgressBar

log = logging.getLogger(__name__)


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
    ckpt_dir = out / "checkpoints"
    checkpoint = ModelCheckpoint(
        dirpath=ckpt_dir, save_last=True, every_n_train_steps=recipe.checkpoint_every
    )
    trainer_cfg = stage_trainer(cfg, recipe)
    trainer: L.Trainer = instantiate(
        trainer_cfg,
        max_steps=recipe.max_steps,
        gradient_clip_val=recipe.gradient_clip_val,
        val_check_interval=recipe.val_check_interval,
        check_val_every_n_epoch=None,
        callbacks=[checkpoint, *progress_bar(cfg, trainer_cfg, description)],
        logger=instantiate_loggers(cfg.logger, out) or False,
        default_root_dir=str(out),
    )
    last = ckpt_dir / "last.ckpt"
    start = time.perf_counter()
    with torch_threads(threads), fit_warnings(getattr(module, "freeze_backbone", False)):
        trainer.fit(module, datamodule=datamodule, ckpt_path=str(last) if last.exists() else None)
    if trainer.interrupted or trainer.global_step < recipe.max_steps:
        raise RuntimeError(
            f"training stopped at step {trainer.global_step}/{recipe.max_steps}; "
            "run the same command again to resume from its last checkpoint"
        )
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
    return metrics | {"train_s": time.perf_counter() - start, "steps": trainer.global_step}


def stage_trainer(cfg: DictConfig, recipe: DictConfig) -> DictConfig:
    """The trainer config of a stage: its own `<stage>.trainer`, else the run's `trainer`.

    E.g. `trainer@head_train.trainer=ddp`: head-only training on DDP beside an FSDP SFT.
    """
    return recipe.get("trainer") or cfg.trainer


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


def stage_metrics(stage: Path) -> dict[str, Any]:
    """The metrics a finished stage recorded."""
    return json.loads((stage / DONE_FILE).read_text())


# --- SFT -------------------------------------------------------------------------------------


# which hidden state the head reads does not change how the backbone is fine-tuned
READOUT_KEYS = ("tap_layer",)


def _stage_dir(cfg: DictConfig, kind: str, spec: dict[str, Any], ignore: tuple = ()) -> Path:
    return Path(cfg.paths.cache_dir) / kind / signature(kind, spec, ignore=ignore)


def sft_spec(cfg: DictConfig) -> dict[str, Any]:
    """What determines the SFT stage."""
    return {
        "backbone": cfg.backbone,
        "data": cfg.data,
        "sft": cfg.sft,
        "seed": cfg.seed,
        "precision": cfg.trainer.precision,
    }


def sft_stage_dir(cfg: DictConfig) -> Path:
    """Where the SFT stage of this config lives in the cache."""
    return _stage_dir(cfg, "sft", sft_spec(cfg), ignore=READOUT_KEYS)


def sft_stage(cfg: DictConfig) -> Path:
    """The finished SFT stage of this config (trained first if missing)."""
    return ensure_stage(sft_stage_dir(cfg), partial(train_sft, cfg), sft_spec(cfg))


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


def sft_source(cfg: DictConfig) -> str:
    """A stable name of the SFT model this config starts from (no training involved)."""
    ckpt = str(cfg.sft.checkpoint)
    if ckpt == "auto":
        return f"sft/{sft_stage_dir(cfg).name}"
    if ckpt == "pretrained":
        return f"pretrained/{signature(cfg.backbone)}"
    return ckpt


def sft_backbone(cfg: DictConfig) -> tuple[Backbone, str]:
    """The SFT backbone of this config and its `sft_source`.

    `sft.checkpoint` is `auto` (the cached SFT stage, trained if missing), `pretrained` (the
    backbone's own weights, e.g. an instruct model), or the path of a saved backbone.
    """
    ckpt = str(cfg.sft.checkpoint)
    if ckpt == "pretrained":
        return instantiate(cfg.backbone), sft_source(cfg)
    readout = {k: cfg.backbone[k] for k in READOUT_KEYS if k in cfg.backbone}
    if ckpt == "auto":
        return load_backbone(sft_stage(cfg) / "backbone", readout), sft_source(cfg)
    return load_backbone(ckpt, readout), ckpt


def report_stage(cfg: DictConfig, task: str, stage: Path, **extra: Any) -> dict[str, Any]:
    """Record a finished stage and its metrics in the run's results.json; return the metrics."""
    metrics = stage_metrics(stage)
    write_results(cfg, {"task": task, "stage": f"{task}/{stage.name}", **extra, **metrics})
    return metrics


def run_sft(cfg: DictConfig, **_: Any) -> dict[str, float]:
    """`task=sft`: make sure the SFT stage exists; report its metrics."""
    return report_stage(cfg, "sft", sft_stage(cfg))


# --- correction head (head-only and joint) ---------------------------------------------------


def head_spec(cfg: DictConfig) -> dict[str, Any]:
    """What determines the head stage: the SFT model it reads, where it reads, how it learns."""
    return {
        "sft": sft_source(cfg),
        "readout": {k: cfg.backbone.get(k) for k in READOUT_KEYS},
        "head": cfg.head,
        "artifact": cfg.artifact,
        # the stage's own trainer (where it has one) counts only by its precision, as the
        # run's trainer does for every stage
        "head_train": {k: v for k, v in cfg.head_train.items() if k != "trainer"},
        "data": cfg.data,
        "seed": cfg.seed,
        "precision": stage_trainer(cfg, cfg.head_train).precision,
    }


def joint_spec(cfg: DictConfig) -> dict[str, Any]:
    """What determines the joint stage (backbone and head trained together from scratch)."""
    return {
        "backbone": cfg.backbone,
        "head": cfg.head,
        "artifact": cfg.artifact,
        "joint": cfg.joint,
        "data": cfg.data,
        "seed": cfg.seed,
        "precision": cfg.trainer.precision,
    }


def head_stage_dir(cfg: DictConfig) -> Path:
    """Where the head stage (frozen SFT backbone + head) of this config lives."""
    return _stage_dir(cfg, "head", head_spec(cfg))


def joint_stage_dir(cfg: DictConfig) -> Path:
    """Where the joint stage of this config lives."""
    return _stage_dir(cfg, "joint", joint_spec(cfg))


def head_stage(cfg: DictConfig) -> Path:
    """The finished head stage of this config (trained first if missing)."""
    return ensure_stage(
        head_stage_dir(cfg), partial(train_correction, cfg, joint=False), head_spec(cfg)
    )


def joint_stage(cfg: DictConfig) -> Path:
    """The finished joint stage of this config (trained first if missing)."""
    return ensure_stage(
        joint_stage_dir(cfg), partial(train_correction, cfg, joint=True), joint_spec(cfg)
    )


def weights_digest(module: torch.nn.Module) -> str:
    """SHA-256 of every parameter and buffer's bytes (to prove a frozen model unchanged)."""
    digest = hashlib.sha256()
    for name, value in sorted(module.state_dict().items()):
        digest.update(name.encode())
        digest.update(value.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def train_correction(cfg: DictConfig, out: Path, joint: bool) -> dict[str, Any]:
    """Train a head on the SFT backbone (frozen) or, if `joint`, with a fresh backbone."""
    L.seed_everything(cfg.seed, workers=True)
    backbone = instantiate(cfg.backbone) if joint else sft_backbone(cfg)[0]
    recipe = cfg.joint if joint else cfg.head_train
    if joint:
        with_lora(backbone, recipe)
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


def run_head(cfg: DictConfig, **_: Any) -> dict[str, Any]:
    """`task=head`: make sure the head stage exists; report its metrics (AUROC, AP, BCE)."""
    return report_stage(cfg, "head", head_stage(cfg), artifact=instantiate(cfg.artifact).name)


def run_joint(cfg: DictConfig, **_: Any) -> dict[str, Any]:
    """`task=joint`: make sure the joint stage exists; report its metrics."""
    return report_stage(cfg, "joint", joint_stage(cfg), artifact=instantiate(cfg.artifact).name)


# --- T2T editor ------------------------------------------------------------------------------


def t2t_spec(cfg: DictConfig) -> dict[str, Any]:
    """What determines the T2T editor stage: the SFT model it continues, its artifacts, recipe."""
    return {
        "sft": sft_source(cfg),
        "artifact": cfg.artifact,
        "t2t": cfg.t2t,
        "data": cfg.data,
        "seed": cfg.seed,
        "precision": cfg.trainer.precision,
    }


def t2t_stage_dir(cfg: DictConfig) -> Path:
    """Where the T2T editor stage of this config lives."""
    return _stage_dir(cfg, "t2t", t2t_spec(cfg))


def t2t_stage(cfg: DictConfig) -> Path:
    """The finished T2T editor stage of this config (trained first if missing)."""
    return ensure_stage(t2t_stage_dir(cfg), partial(train_t2t, cfg), t2t_spec(cfg))


def train_t2t(cfg: DictConfig, out: Path) -> dict[str, Any]:
    """Continue the SFT backbone on `L_sft + μ·CE_edit`; export the (merged) editor backbone."""
    L.seed_everything(cfg.seed, workers=True)
    backbone = with_lora(sft_backbone(cfg)[0], cfg.t2t)
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


def run_t2t(cfg: DictConfig, **_: Any) -> dict[str, Any]:
    """`task=t2t`: make sure the T2T editor stage exists; report its metrics."""
    return report_stage(cfg, "t2t", t2t_stage(cfg), artifact=instantiate(cfg.artifact).name)
