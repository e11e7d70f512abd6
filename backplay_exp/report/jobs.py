"""The jobs of a sweep: their results.json files, which are eval jobs, and their table cells.

Reads only the `results.json` files of a sweep (ARCHITECTURE.md contract). A job's row is its
`method_label` (which model decoded, with which policy); jobs of one row that differ in a swept
setting other than the seed are rows of their own (`variants.py`); a row's jobs at one k are a
cell (`aggregate.py`). The table, the plot and the claims all read a sweep through here.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from backplay_exp.report.aggregate import Cell, cells
from backplay_exp.report.variants import mark_variants
from backplay_exp.tasks.identity import EVAL_TASKS, method_label
from backplay_exp.tasks.results import RESULTS_FILE


def collect(sweep_dir: str | Path) -> list[dict[str, Any]]:
    """Every `results.json` under `sweep_dir`, with its job directory, in path order.

    Jobs of one row that differ in a swept setting other than the seed get a `variant`
    (`mark_variants`), so they are rows of their own, not seeds of one cell.
    """
    results = []
    for path in sorted(Path(sweep_dir).rglob(RESULTS_FILE)):
        record = json.loads(path.read_text())
        record["job_dir"] = str(path.parent)
        results.append(record)
    mark_variants(results, method_label)
    return results


def eval_results(results: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The eval jobs of a sweep (training jobs also write results.json)."""
    return [r for r in results if r.get("task", "eval") in EVAL_TASKS]


def seed_cells(results: Sequence[dict[str, Any]]) -> tuple[list[Cell], bool]:
    """The table's cells, and whether they aggregate several jobs (seeds)."""
    table = cells(eval_results(results), method_label)
    return table, any(len(c.jobs) + c.failed > 1 for c in table)
