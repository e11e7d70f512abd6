"""Sweep results -> the paper's table: rows are methods, columns tokens per step (k).

Reads only the `results.json` files of a sweep (ARCHITECTURE.md contract) and writes
`report.csv` (one row per job), `report.md` (cells `accuracy / NFE`; for sweeps that edit tokens
a second table of T2T edit intensity and edits that fixed / broke a token) and `pareto.png`.
Run standalone: `python -m backplay_exp.report <sweep_dir>`.
"""

from __future__ import annotations

import csv
import json
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

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


def collect(sweep_dir: str | Path) -> list[dict[str, Any]]:
    """Every `results.json` under `sweep_dir`, with its job directory, in path order."""
    results = []
    for path in sorted(Path(sweep_dir).rglob(RESULTS_FILE)):
        record = json.loads(path.read_text())
        record["job_dir"] = str(path.parent)
        results.append(record)
    return results


def eval_results(results: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The eval jobs of a sweep (training jobs also write results.json)."""
    return [r for r in results if r.get("task", "eval") == "eval"]


def method_label(result: dict[str, Any]) -> str:
    """The row a job belongs to: which model decoded, and with which policy.

    `SFT + confidence` (LLaDA), `head(lbc) + backplay` (BackPlay), `joint(lbc) + backplay`
    (the joint ablation), `SFT + random` (random remasking), ...
    """
    model = result.get("model") or ("head" if result.get("artifact") else "sft")
    trained = "SFT" if model == "sft" else f"{model}({result.get('artifact')})"
    label = f"{trained} + {result.get('remask', '?')}"
    decoding = []  # how the sampler committed and cached, when not the paper's plain loop
    if result.get("commit_threshold") is not None:
        decoding.append(f"threshold {result['commit_threshold']}")
    if result.get("cache", "none") != "none":
        decoding.append(f"{result['cache']} cache")
    return f"{label} ({', '.join(decoding)})" if decoding else label


def _cell(result: dict[str, Any] | None) -> str:
    if result is None:
        return ""
    if result.get("status") != "ok":
        return "failed"
    return f"{100 * result['accuracy']:.1f} / {result['nfe_mean']:.1f}"


def _edit_cell(result: dict[str, Any] | None) -> str:
    if result is None or result.get("status") != "ok":
        return _cell(result)
    cell = f"{result.get('edit_intensity') or 0:.3f}"
    if result.get("edits_fixed_mean") is not None:
        cell += f" ({result['edits_fixed_mean']:.2f} / {result['edits_broke_mean']:.2f})"
    return cell


def _grid(evals: Sequence[dict[str, Any]], cell: Callable[[dict | None], str]) -> list[str]:
    """Markdown rows: methods down, k across."""
    ks = sorted({r.get("tokens_per_step") for r in evals}, key=lambda k: (k is None, k))
    methods = list(dict.fromkeys(method_label(r) for r in evals))
    cells = {(method_label(r), r.get("tokens_per_step")): r for r in evals}
    head = "| method | " + " | ".join(f"k={k}" for k in ks) + " |"
    rule = "|---|" + "---|" * len(ks)
    rows = [f"| {m} | " + " | ".join(cell(cells.get((m, k))) for k in ks) + " |" for m in methods]
    return [head, rule, *rows]


def markdown_table(results: Sequence[dict[str, Any]]) -> str:
    """Rows = methods, columns = k, cells = `accuracy (%) / mean NFE`.

    If any job edited tokens (T2T), a second table gives its edit intensity (edits per
    generated token) and, where references are known, mean edits per problem that fixed /
    broke a token.
    """
    evals = eval_results(results)
    bench = sorted({str(r.get("benchmark")) for r in evals})
    sizes = sorted({int(r["n"]) for r in evals if r.get("n") is not None})
    caption = (
        f"Accuracy (%) / mean NFE on {', '.join(bench)}, "
        f"n = {'/'.join(map(str, sizes))} problems per cell."
    )
    lines = [caption, "", *_grid(evals, _cell)]
    if any(r.get("edits_mean") for r in evals):
        lines += [
            "",
            "T2T edit intensity (edits per generated token) (edits per problem that fixed / "
            "broke a token, where the reference is known).",
            "",
            *_grid(evals, _edit_cell),
        ]
    return "\n".join(lines) + "\n"


def write_report(sweep_dir: str | Path) -> str:
    """Write `report.csv`, `report.md` and `pareto.png` into `sweep_dir`; return the table."""
    from backplay_exp.report.plot import pareto_plot

    sweep = Path(sweep_dir)
    results = collect(sweep)
    if not results:
        raise FileNotFoundError(f"no {RESULTS_FILE} under {sweep}")
    with (sweep / "report.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=CSV_FIELDS, extrasaction="ignore")
        writer.writeheader()
        for r in results:
            writer.writerow({**r, "method": method_label(r)})
    table = markdown_table(results)
    (sweep / "report.md").write_text(table)
    pareto_plot(results, sweep / "pareto.png")
    return table
