"""The Pareto picture of a sweep: accuracy vs mean NFE and vs wall time; lines = methods."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only; no display on a cluster node
import matplotlib.pyplot as plt

from backplay_exp.report.jobs import seed_cells


@dataclass
class Point:
    """One cell on the plot: x values (NFE, seconds per problem), accuracy, 95% half-widths."""

    nfe: float
    nfe_err: float
    seconds: float
    seconds_err: float
    accuracy: float
    accuracy_err: float
    k: Any


def seconds_per_problem(job: dict[str, Any]) -> float:
    """Decoding wall time per problem of an eval job (NaN if it did not say)."""
    return job["wall_s"] / job["n"] if job.get("wall_s") and job.get("n") else float("nan")


def pareto_points(results: Sequence[dict[str, Any]]) -> dict[str, list[Point]]:
    """Per method, its cells sorted by NFE; over seeds, means with 95% half-widths."""
    lines: dict[str, list[Point]] = defaultdict(list)
    for cell in seed_cells(results)[0]:
        if not cell.jobs:
            continue  # failed: left out
        lines[cell.method].append(
            Point(
                *cell.stat("nfe_mean"),
                *cell.stat(seconds_per_problem),
                *cell.stat("accuracy", 100),
                cell.tokens_per_step,
            )
        )
    return {m: sorted(points, key=lambda p: p.nfe) for m, points in lines.items()}


def pareto_plot(results: Sequence[dict[str, Any]], path: str | Path) -> Path:
    """Draw accuracy (%) against mean NFE and against wall time, one line per method.

    Failed jobs are left out; each point is annotated with its tokens per step; over seeds,
    points are means with 95% confidence intervals as error bars. The right panel is decoding
    wall time per problem (what a cache or a cheaper step buys, which NFE does not show).
    """
    lines = pareto_points(results)
    # more lines than the default cycle's 10 colours: tab20 and a marker per line, legend below
    many = len(lines) > 10
    palette = plt.get_cmap("tab20").colors if many else [f"C{i}" for i in range(10)]
    fig, axes = plt.subplots(
        1, 2, figsize=(11, 4.4 + 0.22 * len(lines) / 2 * many), dpi=120, sharey=True
    )
    for i, (method, points) in enumerate(lines.items()):
        color, marker = palette[i % len(palette)], "osD^v<>p"[i % 8] if many else "o"
        for ax, (x, err) in zip(
            axes, (("nfe", "nfe_err"), ("seconds", "seconds_err")), strict=True
        ):
            xs, ys = [getattr(p, x) for p in points], [p.accuracy for p in points]
            ax.errorbar(
                xs, ys, xerr=[getattr(p, err) for p in points],
                yerr=[p.accuracy_err for p in points], marker=marker, capsize=3,
                label=method, color=color,
            )  # fmt: skip
            for px, py, p in zip(xs, ys, points, strict=True):
                ax.annotate(
                    f"k={p.k}", (px, py), textcoords="offset points", xytext=(4, 4),
                    fontsize=8, color=color,
                )  # fmt: skip
    bench = ", ".join(sorted({str(r.get("benchmark")) for r in results}))
    axes[0].set(
        xlabel="mean NFE per problem (lower = faster)",
        ylabel="accuracy (%)",
        title=f"Accuracy vs NFE ({bench})",
    )
    axes[1].set(xlabel="decoding wall time per problem (s)", title="Accuracy vs wall time")
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.margins(x=0.1, y=0.08)  # room for the k labels at the ends
    if many:
        handles, labels = axes[0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="lower center", ncol=2, fontsize=7, frameon=False)
        fig.tight_layout(rect=(0, 0.11 * len(lines) / 8, 1, 1))
    else:
        if lines:
            axes[0].legend(fontsize=7)
        fig.tight_layout()
    out = Path(path)
    fig.savefig(out)
    plt.close(fig)
    return out
