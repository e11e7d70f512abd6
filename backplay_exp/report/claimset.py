"""What a claim compares, as config: `conf/claims/<name>.yaml` -> a `ClaimSet` (`report/claims.py`).

A claim names a sweep (a sub-directory of the report's root; `.` = the sweep itself), the arms it
compares (fields of results.json: `remask`, `tokens_per_step`, `model`, `artifact`, `task`), the
metric and its scale, side quantities and conditions, and the strings it is shown with. The
schemas are the dataclasses below: an unknown or mistyped key fails when the file is loaded.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

CLAIMS_DIR = Path(__file__).parents[2] / "conf" / "claims"


@dataclass
class Term:
    """One arm's metric in a seed: `scale * (job[metric] - baseline)`.

    Attributes:
        arm: The fields of results.json its jobs have (`remask`, `tokens_per_step`, `model`...).
        metric: The field it reads.
        scale: 100 turns accuracies into points.
        baseline: Subtracted before scaling (AUROC: 0.5, chance).
        sweep: The sweep's sub-directory, where it is not the claim's.
    """

    arm: dict[str, Any]
    metric: str = "accuracy"
    scale: float = 100.0
    baseline: float = 0.0
    sweep: str | None = None


@dataclass
class Side:
    """A per-seed quantity shown beside a claim, and optionally a condition on it.

    `text` is formatted with `{per_seed}` (`seed: value, ...`), `{values}`, `{n}`, `{n_above}`
    (seeds above `every_seed_above`) and `{worst}`; values are written with `format`. With no
    terms of its own it reads the claim's quantity.
    """

    name: str
    text: str
    plus: list[Term] = field(default_factory=list)
    minus: list[Term] = field(default_factory=list)
    format: str = "+.1f"
    every_seed_above: float | None = None
    worst_at_least: float | None = None


@dataclass
class ClaimSpec:
    """What decides one claim (a config entry of `ClaimSet`).

    `line` is the one-line verdict's text, formatted with `{value}`, `{plus}`, `{minus}` (means
    over seeds of the quantity and of its two sides) and each side by name (`{nfe.plus}`).
    """

    name: str
    statement: str
    quantity: str
    plus: list[Term]
    minus: list[Term] = field(default_factory=list)
    sweep: str = "."
    sides: list[Side] = field(default_factory=list)
    line: str | None = None


class ClaimSet:
    """The claims of a config file, and (for a paper of several sweeps) its report's sections.

    Args:
        claims: One `ClaimSpec` mapping each.
        title: The combined report's title (`write_claims`).
        sections: Sweep sub-directory -> the table it reproduces, in report order.
    """

    def __init__(
        self,
        claims: Sequence[Mapping[str, Any]],
        title: str = "",
        sections: Mapping[str, str] | None = None,
    ) -> None:
        schema = OmegaConf.structured(ClaimSpec)
        self.specs: list[ClaimSpec] = [
            OmegaConf.to_object(OmegaConf.merge(schema, spec)) for spec in claims
        ]
        self.title, self.sections = title, dict(sections or {})


def load_claims(name: str | Path) -> ClaimSet:
    """The `ClaimSet` of `conf/claims/<name>.yaml` (or of a YAML file's path)."""
    from hydra.utils import instantiate

    path = Path(name) if Path(name).suffix else CLAIMS_DIR / f"{name}.yaml"
    return instantiate(OmegaConf.load(path))
