"""Rows of a sweep that differ in a setting the row label does not name.

Hydra records each job's command-line overrides in `.hydra/overrides.yaml`; within one row,
the overrides whose values differ between jobs (other than the seed and k) are the row's
variants.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

# overrides that repeat a cell (seeds) or pick its column (k): never a variant of a row
NOT_A_VARIANT = ("seed", "sampler.tokens_per_step")


def _overrides(job_dir: Path) -> dict[str, str]:
    """The job's command-line overrides (Hydra's `.hydra/overrides.yaml`), key -> value."""
    path = job_dir / ".hydra" / "overrides.yaml"
    if not path.exists():
        return {}
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from omegaconf import OmegaConf

    parsed = OverridesParser.create().parse_overrides([str(o) for o in OmegaConf.load(path)])
    return {
        o.key_or_group: "(deleted)" if o.is_delete() else o.get_value_element_as_str()
        for o in parsed
    }


def mark_variants(results: list[dict[str, Any]], label: Callable[[dict[str, Any]], str]) -> None:
    """Tell apart jobs of one row that a sweep ran with other settings, not other seeds.

    A sweep over a knob the row label does not name (`remask.threshold=0.98,0.99`) would
    otherwise put jobs of different settings into one cell and average them as if they were
    seeds. Each such job gets `variant`, the overrides in which its row's jobs differ (besides
    `seed` and k), e.g. `remask.threshold=0.98`; the row label
    (`report.table.method_label`) appends it.
    """
    rows: dict[str, list[dict[str, Any]]] = {}
    for r in results:
        rows.setdefault(label(r), []).append(r)
    for jobs in rows.values():
        overrides = [_overrides(Path(j["job_dir"])) if "job_dir" in j else {} for j in jobs]
        keys = sorted({k for o in overrides for k in o} - set(NOT_A_VARIANT))
        differ = [k for k in keys if len({o.get(k) for o in overrides}) > 1]
        if not differ:
            continue
        for job, o in zip(jobs, overrides, strict=True):
            job["variant"] = ", ".join(f"{k}={o.get(k, '(default)')}" for k in differ)
