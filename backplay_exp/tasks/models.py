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

from typing import Any

from hydra.utils import instantiate
from omegaconf import DictConfig
from torch import nn

from backplay_exp.backbones.base import Backbone
from backplay_exp.tasks.registry import (
    load_stage_backbone,
    load_stage_head,
    resolve,
    uses_artifact,
    with_needs,
)

# model -> (the stage its backbone comes from, the stage its head comes from, if any)
MODELS: dict[str, tuple[str, str | None]] = {
    "sft": ("sft", None),
    "head": ("sft", "head"),
    "joint": ("joint", "joint"),
    "t2t": ("t2t", None),
}


def model_kind(cfg: DictConfig, policy_uses_head: bool) -> str:
    """Which trained model decodes (`sft`, `head`, `joint`, `t2t`), `model=auto` resolved.

    Raises:
        ValueError: for an unknown model or one the policy cannot decode with.
    """
    model = str(cfg.model)
    if model not in ("auto", *MODELS):
        raise ValueError(f"model={model!r} is not one of auto, {', '.join(MODELS)}")
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


def model_stages(cfg: DictConfig, policy_uses_head: bool) -> tuple[str, ...]:
    """The stages the decoding model loads: its backbone's, then its head's (if another)."""
    backbone, head = MODELS[model_kind(cfg, policy_uses_head)]
    return tuple(dict.fromkeys(s for s in (backbone, head) if s is not None))


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
    for name in with_needs(model_stages(cfg, policy_uses_head)):
        resolve(cfg, name, train)


def decoding_model(
    cfg: DictConfig, policy_uses_head: bool
) -> tuple[Backbone, nn.Module | None, dict[str, Any]]:
    """The backbone and head to decode with, and what describes them in results.json."""
    model = model_kind(cfg, policy_uses_head)
    backbone_from, head_from = MODELS[model]
    stages = model_stages(cfg, policy_uses_head)
    where = resolve(cfg, backbone_from)
    info = {
        "model": model,
        "artifact": instantiate(cfg.artifact).name if uses_artifact(stages) else None,
        "model_source": where.source,
    }
    backbone = load_stage_backbone(cfg, where)
    if head_from is None:
        return backbone, None, info
    if head_from != backbone_from:
        where = resolve(cfg, head_from)
        info["head_source"] = where.source
    return backbone, load_stage_head(where), info
