"""The Pareto picture of a sweep: accuracy vs mean NFE and vs wall time; lines = methods."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only; no display on a cluster node
import matplotlib.pyplot as plt

from backplay_exp.report.table import eval_results, method_label


def pareto_plot(results: Sequence[dict[str, Any]], path: str | Path) -> Path:
    """Draw accuracy (%) against mean NFE and against wall time, one line per method.

    Failed jobs are left out; each point is annotated with its tokens per step. The right
    panel is decoding wall time per problem (what a cache or a cheaper step buys, which NFE
    does not show).
    """
    lines: dict[str, list[tuple[float, float, float, Any]]] = defaultdict(list)
    for r in eval_results(results):
        if r.get("status") == "ok":
            per_problem = r["wall_s"] / r["n"] if r.get("wall_s") and r.get("n") else float("nan")
            lines[method_label(r)].append(
                (r["nfe_mean"], per_problem, 100 * r["accuracy"], r.get("tokens_per_step"))
            )
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.4), dpi=120, sharey=True)
    for method, points in lines.items():
        points.sort(key=lambda p: p[0])
        color = None
        for ax, x in zip(axes, (0, 1), strict=True):
            xs, ys = [p[x] for p in points], [p[2] for p in points]
            (line,) = ax.plot(xs, ys, marker="o", label=method, color=color)
            color = line.get_color()
            for px, py, p in zip(xs, ys, points, strict=True):
                ax.annotate(
                    f"k={p[3]}", (px, py), textcoords="offset points", xytext=(4, 4),
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
    if lines:
        axes[0].legend(fontsize=7)
    fig.tight_layout()
    out = Path(path)
    fig.savefig(out)
    plt.close(fig)
    return out
