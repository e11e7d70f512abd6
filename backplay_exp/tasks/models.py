"""Which trained model an eval job decodes with (root key `model`).

- `sft`: the SFT backbone, no head (confidence / random_order / random remasking).
- `head`: the frozen SFT backbone plus the BackPlay head trained on it (task=head's stage).
- `joint`: the backbone and head of the joint ablation (task=joint's stage).
- `t2t`: the T2T editor backbone (task=t2t's stage), no head; decode it with `remask=t2t_q`/`t2t_s`.
  To remask with BackPlay and edit at once, train a head on the editor instead:
  `sft.checkpoint=<t2t stage>/backbone model=head remask=backplay_edit`.
- `auto`: `head` when the remask policy needs a head, else `sft` (so is `head` with a
  policy that needs none: BackPlay's backbone is the SFT model, frozen).
Stages are trained on first use and cached; `head_train.checkpoint` / `joint.checkpoint` /
`t2t.checkpoint` paths override the cache.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from hydra.utils import instantiate
from omegaconf import DictConfig
from torch import nn

from backplay_exp.backbones.base import Backbone, load_backbone
from backplay_exp.heads.io import load_head
from backplay_exp.tasks.stages import is_done
from backplay_exp.tasks.train import (
    head_stage,
    head_stage_dir,
    joint_stage,
    joint_stage_dir,
    sft_backbone,
    sft_stage,
    sft_stage_dir,
    t2t_stage,
    t2t_stage_dir,
)

MODELS = ("auto", "sft", "head", "joint", "t2t")


def stage_or_path(
    ckpt: str, stage: Callable[[DictConfig], Path], cfg: DictConfig, kind: str
) -> tuple[Path, str]:
    """The cached stage (`auto`: trained first if missing) or the explicit path, and its name."""
    if ckpt == "auto":
        found = stage(cfg)
        return found, f"{kind}/{found.name}"
    return Path(ckpt), ckpt


def model_kind(cfg: DictConfig, policy_uses_head: bool) -> str:
    """Which trained model decodes (`sft`, `head`, `joint`, `t2t`), `model=auto` resolved.

    Raises:
        ValueError: for an unknown model or one the policy cannot decode with.
    """
    model = str(cfg.model)
    if model not in MODELS:
        raise ValueError(f"model={model!r} is not one of {', '.join(MODELS)}")
    if model == "auto" or (model == "head" and not policy_uses_head):
        # a frozen-backbone head that the policy does not consult leaves the SFT model
        model = "head" if policy_uses_head else "sft"
    if model == "sft" and policy_uses_head:
        raise ValueError(
            "this remask policy needs a correction head: use model=head (BackPlay) or "
            "model=joint, or a policy without a head (confidence, random_order, random)"
        )
    if model == "t2t" and policy_uses_head:
        raise ValueError(
            "model=t2t has no correction head: to remask with a head and edit, train one on "
            "the editor (sft.checkpoint=<t2t stage>/backbone model=head remask=backplay_edit)"
        )
    return model


def prepare_stages(cfg: DictConfig, policy_uses_head: bool, train: bool = True) -> None:
    """Make sure the cached stages `decoding_model` loads exist, without loading them.

    Args:
        cfg: The job config.
        policy_uses_head: Whether the remask policy reads a head.
        train: Train a missing stage here; False raises instead (the processes of a
            multi-process job must not each train: train the stages first).

    Raises:
        FileNotFoundError: if `train` is False and a stage is missing, naming the command.
    """
    model = model_kind(cfg, policy_uses_head)
    needed = {"sft": [("sft", sft_stage_dir, sft_stage)]}
    needed["head"] = [*needed["sft"], ("head_train", head_stage_dir, head_stage)]
    needed["joint"] = [("joint", joint_stage_dir, joint_stage)]
    needed["t2t"] = [*needed["sft"], ("t2t", t2t_stage_dir, t2t_stage)]
    for key, where, stage in needed[model]:
        if str(cfg[key].checkpoint) != "auto":
            continue  # an explicit path (or the pretrained backbone): nothing to train
        if train:
            stage(cfg)
        elif not is_done(where(cfg)):
            task = {"sft": "sft", "head_train": "head", "joint": "joint", "t2t": "t2t"}[key]
            raise FileNotFoundError(
                f"the {task} stage is not in the cache ({where(cfg)}): train it first with the "
                f"same overrides and task={task} (one process), as launch/_sweep.sh does"
            )


def decoding_model(
    cfg: DictConfig, policy_uses_head: bool
) -> tuple[Backbone, nn.Module | None, dict[str, Any]]:
    """The backbone and head to decode with, and what describes them in results.json."""
    model = model_kind(cfg, policy_uses_head)
    artifact = instantiate(cfg.artifact).name
    if model == "t2t":
        stage, source = stage_or_path(str(cfg.t2t.checkpoint), t2t_stage, cfg, "t2t")
        info = {"model": "t2t", "artifact": artifact, "model_source": source}
        return load_backbone(stage / "backbone"), None, info
    if model == "joint":
        stage, source = stage_or_path(str(cfg.joint.checkpoint), joint_stage, cfg, "joint")
        info = {"model": "joint", "artifact": artifact, "model_source": source}
        return load_backbone(stage / "backbone"), load_head(stage / "head"), info
    backbone, source = sft_backbone(cfg)
    if model == "sft":
        return backbone, None, {"model": "sft", "artifact": None, "model_source": source}
    ckpt = str(cfg.head_train.checkpoint)
    stage, head_source = stage_or_path(ckpt, head_stage, cfg, "head")
    head_dir = stage / "head" if ckpt == "auto" else stage  # an explicit path is the head dir
    info = {
        "model": "head",
        "artifact": artifact,
        "model_source": source,
        "head_source": head_source,
    }
    return backbone, load_head(head_dir), info
