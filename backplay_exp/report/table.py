"""Sweep results -> the paper's table: rows are methods, columns tokens per step (k).

Reads only the `results.json` files of a sweep (ARCHITECTURE.md contract) and writes
`report.csv` (one row per job), `report_summary.csv` (one row per cell: means and 95%
confidence intervals over seeds), `report.md` (cells `accuracy / NFE`, over seeds `mean ± CI`;
for sweeps that edit tokens a second table of T2T edit intensity and edits that fixed / broke a
token) and `pareto.png`.
Run standalone: `python -m backplay_exp.report <sweep_dir>`.
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from backplay_exp.report.aggregate import Cell, mean_ci
from backplay_exp.report.jobs import collect, eval_results, method_label, seed_cells
from backplay_exp.report.plot import pareto_plot
from backplay_exp.tasks.results import RESULTS_FILE

log = logging.getLogger(__name__)

CSV_FIELDS = (
    "method",
    "tokens_per_step",
    "accuracy",
    "nfe_mean",
    "remasks_mean",
    "edits_mean",
    "edit_intensity",
    "edits_fixed_mean",
    "edits_broke_mean",
    "n",
    "seed",
    "wall_s",
    "tokens_per_s",
    "benchmark",
    "backbone",
    "remask",
    "artifact",
    "schedule",
    "commit_threshold",
    "cache",
    "status",
    "job_dir",
)


# metrics averaged over seeds in report_summary.csv (and the W&B summary table)
SUMMARY_METRICS = (
    "accuracy",
    "nfe_mean",
    "remasks_mean",
    "edit_intensity",
    "wall_s",
    "tokens_per_s",
)
SUMMARY_FIELDS = (
    "method",
    "tokens_per_step",
    "n_seeds",
    "failed",
    "seeds",
    *(f"{m}_{s}" for m in SUMMARY_METRICS for s in ("mean", "ci95")),
)


def _cell(cell: Cell | None, seeds: bool) -> str:
    """`accuracy / NFE` of a job; over seeds `mean ± 95% CI / mean ± 95% CI (n=…)`."""
    if cell is None:
        return ""
    if not cell.jobs:
        return "failed"
    if not seeds:
        r = cell.jobs[0]
        return f"{100 * r['accuracy']:.1f} / {r['nfe_mean']:.1f}"
    (acc, acc_ci), (nfe, nfe_ci) = cell.stat("accuracy", 100), cell.stat("nfe_mean")
    failed = f", {cell.failed} failed" if cell.failed else ""
    return f"{acc:.1f} ± {acc_ci:.1f} / {nfe:.1f} ± {nfe_ci:.1f} (n={cell.n_seeds}{failed})"


def _edit_cell(cell: Cell | None, seeds: bool) -> str:
    if cell is None or not cell.jobs:
        return _cell(cell, seeds)
    jobs = cell.jobs
    if seeds:
        mean, ci = mean_ci([j.get("edit_intensity") or 0.0 for j in jobs])
        return f"{mean:.3f} ± {ci:.3f} (n={cell.n_seeds})"
    result = jobs[0]
    text = f"{result.get('edit_intensity') or 0:.3f}"
    if result.get("edits_fixed_mean") is not None:
        text += f" ({result['edits_fixed_mean']:.2f} / {result['edits_broke_mean']:.2f})"
    return text


def _grid(
    table: Sequence[Cell], cell: Callable[[Cell | None, bool], str], seeds: bool
) -> list[str]:
    """Markdown rows: methods down, k across."""
    ks = sorted({c.tokens_per_step for c in table}, key=lambda k: (k is None, k))
    methods = list(dict.fromkeys(c.method for c in table))
    by_key = {(c.method, c.tokens_per_step): c for c in table}
    head = "| method | " + " | ".join(f"k={k}" for k in ks) + " |"
    rule = "|---|" + "---|" * len(ks)
    rows = [
        f"| {m} | " + " | ".join(cell(by_key.get((m, k)), seeds) for k in ks) + " |"
        for m in methods
    ]
    return [head, rule, *rows]


def markdown_table(results: Sequence[dict[str, Any]]) -> str:
    """Rows = methods, columns = k, cells = `accuracy (%) / mean NFE`.

    If a sweep repeats cells over training seeds, a cell is the mean ± the 95% confidence
    interval over them, and n (`report/aggregate.py`). If any job edited tokens (T2T), a
    second table gives its edit intensity (edits per generated token) and, where references
    are known, mean edits per problem that fixed / broke a token.
    """
    evals = eval_results(results)
    if not evals:
        return training_table(results)
    table, seeds = seed_cells(results)
    bench = sorted({str(r.get("benchmark")) for r in evals})
    sizes = sorted({int(r["n"]) for r in evals if r.get("n") is not None})
    caption = (
        f"Accuracy (%) / mean NFE on {', '.join(bench)}, "
        f"n = {'/'.join(map(str, sizes))} problems per cell."
    )
    if seeds:
        caption += (
            " Each cell: mean ± 95% confidence interval over training seeds (Student's t), "
            "n = seeds."
        )
    lines = [caption, "", *_grid(table, _cell, seeds)]
    if any(r.get("edits_mean") for r in evals):
        lines += [
            "",
            "T2T edit intensity (edits per generated token) (edits per problem that fixed / "
            "broke a token, where the reference is known).",
            "",
            *_grid(table, _edit_cell, seeds),
        ]
    return "\n".join(lines) + "\n"


def training_table(results: Sequence[dict[str, Any]]) -> str:
    """A sweep of training jobs only (`task=head`, ...): their validation metrics.

    One row per finished job, and for several jobs their mean ± 95% interval.
    """
    jobs = [r for r in results if r.get("status") == "ok"]
    metrics = sorted({k for r in jobs for k in r if k.startswith("val/")})
    head = "| job | seed | " + " | ".join(metrics) + " |"
    rows = [head, "|---|---|" + "---|" * len(metrics)]
    for r in jobs:
        values = (f"{r[m]:.4f}" if isinstance(r.get(m), float) else "" for m in metrics)
        rows.append(f"| {r.get('stage', r.get('task'))} | {r.get('seed')} | {' | '.join(values)} |")
    if len(jobs) > 1:
        stats = []
        for m in metrics:
            values = [r[m] for r in jobs if isinstance(r.get(m), float)]
            stats.append("{:.4f} ± {:.4f}".format(*mean_ci(values)) if values else "")
        rows.append(f"| mean ± 95% CI | n={len(jobs)} | {' | '.join(stats)} |")
    failed = len(results) - len(jobs)
    caption = "Training jobs: validation metrics" + (f" ({failed} failed)." if failed else ".")
    return "\n".join([caption, "", *rows]) + "\n"


def summary_rows(results: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (method, k): means and 95% half-widths over its seeds (report_summary.csv)."""
    rows = []
    for cell in seed_cells(results)[0]:
        row: dict[str, Any] = {
            "method": cell.method,
            "tokens_per_step": cell.tokens_per_step,
            "n_seeds": cell.n_seeds,
            "failed": cell.failed,
            "seeds": " ".join(str(j.get("seed")) for j in cell.jobs),
        }
        for key in SUMMARY_METRICS:
            if cell.jobs and all(j.get(key) is not None for j in cell.jobs):
                row[f"{key}_mean"], row[f"{key}_ci95"] = cell.stat(key)
        rows.append(row)
    return rows


def write_report(sweep_dir: str | Path) -> str:
    """Write `report.csv`, `report.md` and `pareto.png` into `sweep_dir`; return the table."""
    sweep = Path(sweep_dir)
    results = collect(sweep)
    if not results:
        raise FileNotFoundError(f"no {RESULTS_FILE} under {sweep}")
    with (sweep / "report.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=CSV_FIELDS, extrasaction="ignore")
        writer.writeheader()
        for r in results:
            writer.writerow({**r, "method": method_label(r)})
    with (sweep / "report_summary.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=SUMMARY_FIELDS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(summary_rows(results))
    table = markdown_table(results)
    (sweep / "report.md").write_text(table)
    pareto_plot(results, sweep / "pareto.png")
    return table
