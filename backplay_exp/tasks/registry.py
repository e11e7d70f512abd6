"""The kinds of trained stage, as data, and the one path every task takes to reach a stage.

A stage kind (`STAGES`) says what it trains (a training function, `tasks/train.py`), which config
nodes form its signature (the hash naming its cache directory, `tasks/stages.py`), which stages it
starts from, and what it exports (`backbone`, `head`). Every task reaches a stage through
`resolve(cfg, kind)`: the path in `<recipe>.checkpoint`, or the cached stage of this config,
trained first (with what it needs) when missing. Adding a kind = one `StageKind` entry here and
one training function `(cfg, out) -> metrics`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hydra.utils import get_method, instantiate
from omegaconf import DictConfig, OmegaConf
from torch import nn

from backplay_exp.backbones.base import Backbone, load_backbone
from backplay_exp.heads.io import load_head
from backplay_exp.tasks.results import write_results
from backplay_exp.tasks.stages import DONE_FILE, ensure_stage, is_done, signature

# which hidden state the head reads does not change how the backbone is fine-tuned
READOUT_KEYS = ("tap_layer",)


@dataclass(frozen=True)
class StageKind:
    """One kind of trained stage.

    Attributes:
        name: The kind: its cache sub-directory, its `task=` and its key in a later signature.
        recipe: The config node of its recipe (`sft`, `head_train`, ...): `checkpoint` (`auto`
            or a path), the training knobs, and a `trainer` of its own where it has one.
        train: Dotted path of its training function `(cfg, out) -> metrics`.
        keys: Config nodes its signature hashes whole (with the recipe, seed and precision).
        parts: Signature parts that take only some keys of a node: name -> (node, keys).
        needs: Kinds it starts from; the signature names each by its source.
        outputs: The directories it exports.
        path_output: The output an explicit `checkpoint` path points at (None: the path is a
            stage directory holding every output).
        ignore: Keys left out of the signature at every depth: settings the stage does not
            depend on, re-applied from the config when its backbone is loaded.
        pretrained: `checkpoint: pretrained` stands for it (the backbone's own weights).
    """

    name: str
    recipe: str
    train: str
    keys: tuple[str, ...]
    parts: Mapping[str, tuple[str, tuple[str, ...]]] = field(default_factory=dict)
    needs: tuple[str, ...] = ()
    outputs: tuple[str, ...] = ("backbone",)
    path_output: str | None = None
    ignore: tuple[str, ...] = ()
    pretrained: bool = False


def _by_name(*kinds: StageKind) -> dict[str, StageKind]:
    return {kind.name: kind for kind in kinds}


TRAIN = "backplay_exp.tasks.train"
STAGES = _by_name(
    # the backbone fine-tuned with the masked-diffusion loss
    StageKind(
        name="sft",
        recipe="sft",
        train=f"{TRAIN}.train_sft",
        keys=("backbone", "data"),
        path_output="backbone",
        ignore=READOUT_KEYS,
        pretrained=True,
    ),
    # the BackPlay head on the frozen SFT backbone's own errors
    StageKind(
        name="head",
        recipe="head_train",
        train=f"{TRAIN}.train_head",
        keys=("head", "artifact", "data"),
        parts={"readout": ("backbone", READOUT_KEYS)},
        needs=("sft",),
        outputs=("head",),
        path_output="head",
    ),
    # the ablation: backbone and head trained together from the backbone's own weights
    StageKind(
        name="joint",
        recipe="joint",
        train=f"{TRAIN}.train_joint",
        keys=("backbone", "head", "artifact", "data"),
        outputs=("backbone", "head"),
    ),
    # the T2T editor: the SFT model continued on L_sft + μ·CE_edit
    StageKind(
        name="t2t",
        recipe="t2t",
        train=f"{TRAIN}.train_t2t",
        keys=("artifact", "data"),
        needs=("sft",),
    ),
)


def stage_trainer(cfg: DictConfig, recipe: DictConfig) -> DictConfig:
    """The trainer config of a stage: its own `<recipe>.trainer`, else the run's `trainer`.

    E.g. `trainer@head_train.trainer=ddp`: head-only training on DDP beside an FSDP SFT.
    """
    return recipe.get("trainer") or cfg.trainer


def spec(cfg: DictConfig, name: str) -> dict[str, Any]:
    """What determines the stage `name` of this config (what its signature hashes)."""
    kind = STAGES[name]
    recipe = cfg[kind.recipe]
    out: dict[str, Any] = {key: cfg[key] for key in kind.keys}
    out |= {part: {k: cfg[node].get(k) for k in keys} for part, (node, keys) in kind.parts.items()}
    out |= {upstream: source(cfg, upstream) for upstream in kind.needs}
    # the stage's own trainer (where it has one) counts only by its precision, as the run's
    # trainer does for every stage
    plain = OmegaConf.to_container(recipe, resolve=True)
    out[kind.recipe] = {k: v for k, v in plain.items() if k != "trainer"}
    out |= {"seed": cfg.seed, "precision": stage_trainer(cfg, recipe).precision}
    return out


def stage_dir(cfg: DictConfig, name: str) -> Path:
    """Where the cached stage `name` of this config lives (whether or not it exists)."""
    ignore = STAGES[name].ignore
    return Path(cfg.paths.cache_dir) / name / signature(name, spec(cfg, name), ignore=ignore)


def source(cfg: DictConfig, name: str) -> str:
    """A stable name of the stage `name` this config uses (no training involved).

    `<kind>/<signature>` for the cached stage, `pretrained/<backbone signature>` for the
    backbone's own weights, else the explicit path.
    """
    ckpt = str(cfg[STAGES[name].recipe].checkpoint)
    if ckpt == "auto":
        return f"{name}/{stage_dir(cfg, name).name}"
    if ckpt == "pretrained" and STAGES[name].pretrained:
        return f"pretrained/{signature(cfg.backbone)}"
    return ckpt


@dataclass(frozen=True)
class Stage:
    """A stage this config uses: where its outputs are, and the name results.json records.

    Attributes:
        kind: Its kind.
        source: `source(cfg, kind)`.
        root: Its stage directory, or the explicit path; None for the backbone's own weights.
        explicit: `root` is the explicit path of the config (`<recipe>.checkpoint`).
    """

    kind: StageKind
    source: str
    root: Path | None
    explicit: bool = False

    def output(self, name: str) -> Path:
        """The directory of the output `name` (`backbone`, `head`).

        Raises:
            ValueError: for the backbone's own weights, which have no directory here.
        """
        if name not in self.kind.outputs:
            raise ValueError(f"a {self.kind.name} stage exports no {name}")
        if self.root is None:
            raise ValueError(f"{self.source} has no saved {name}: it is the config's backbone")
        if self.explicit and name == self.kind.path_output:
            return self.root
        return self.root / name


def load_stage_backbone(cfg: DictConfig, stage: Stage) -> Backbone:
    """The backbone a stage exports (`pretrained`: the config's), ignored settings re-applied."""
    if stage.root is None:
        return instantiate(cfg.backbone)
    readout = {k: cfg.backbone[k] for k in stage.kind.ignore if k in cfg.backbone}
    return load_backbone(stage.output("backbone"), readout)


def load_stage_head(stage: Stage) -> nn.Module:
    """The correction head a stage exports."""
    return load_head(stage.output("head"))


def ensure(cfg: DictConfig, name: str) -> Path:
    """The cached stage `name` of this config, trained first if missing (`task=<kind>`).

    The training function is imported only when the stage must be trained.
    """

    def train(out: Path) -> dict[str, Any]:
        return get_method(STAGES[name].train)(cfg, out)

    return ensure_stage(stage_dir(cfg, name), train, spec(cfg, name))


def resolve(cfg: DictConfig, name: str, train: bool = True) -> Stage:
    """The stage `name` this config uses: its explicit path, else the cached one.

    Args:
        cfg: The job config.
        name: The stage kind.
        train: Train a missing cached stage (with what it needs) here; False raises instead
            (the processes of a multi-process job must not each train: train the stages first).

    Raises:
        FileNotFoundError: if `train` is False and the cached stage is missing, naming the command.
    """
    kind = STAGES[name]
    ckpt = str(cfg[kind.recipe].checkpoint)
    if ckpt == "pretrained" and kind.pretrained:
        return Stage(kind, source(cfg, name), None)
    if ckpt != "auto":
        return Stage(kind, ckpt, Path(ckpt), explicit=True)
    where = stage_dir(cfg, name)
    if not train and not is_done(where):
        raise FileNotFoundError(
            f"the {name} stage is not in the cache ({where}): train it first with the same "
            f"overrides and task={name} (one process), as launch/_sweep.sh does"
        )
    return Stage(kind, f"{name}/{where.name}", ensure(cfg, name))


def with_needs(names: Iterable[str]) -> list[str]:
    """`names` and every stage they start from, each after what it needs."""
    order: list[str] = []
    for name in names:
        for upstream in with_needs(STAGES[name].needs):
            if upstream not in order:
                order.append(upstream)
        if name not in order:
            order.append(name)
    return order


def uses_artifact(names: Iterable[str]) -> bool:
    """Whether any of these stages was trained on the config's artifact."""
    return any("artifact" in STAGES[name].keys for name in names)


def run_stage(cfg: DictConfig, name: str) -> dict[str, Any]:
    """`task=<kind>`: make sure the cached stage exists; record it and its metrics."""
    stage = ensure(cfg, name)
    metrics = json.loads((stage / DONE_FILE).read_text())
    extra = {"artifact": instantiate(cfg.artifact).name} if uses_artifact([name]) else {}
    write_results(cfg, {"task": name, "stage": f"{name}/{stage.name}", **extra, **metrics})
    return metrics
