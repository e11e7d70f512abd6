"""The Pareto picture of a sweep: accuracy against mean NFE, one line per method, points = k."""

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
    """Draw accuracy (%) vs mean NFE for every method of a sweep and save it to `path`.

    Failed jobs are left out; each point is annotated with its tokens per step.
    """
    lines: dict[str, list[tuple[float, float, Any]]] = defaultdict(list)
    for r in eval_results(results):
        if r.get("status") == "ok":
            lines[method_label(r)].append(
                (r["nfe_mean"], 100 * r["accuracy"], r.get("tokens_per_step"))
            )
    fig, ax = plt.subplots(figsize=(6.4, 4.4), dpi=120)
    for method, points in lines.items():
        points.sort(key=lambda p: p[0])
        (line,) = ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=method)
        for x, y, k in points:
            ax.annotate(
                f"k={k}",
                (x, y),
                textcoords="offset points",
                xytext=(4, 4),
                fontsize=8,
                color=line.get_color(),
            )
    bench = ", ".join(sorted({str(r.get("benchmark")) for r in results}))
    ax.set(
        xlabel="mean NFE per problem (lower = faster)",
        ylabel="accuracy (%)",
        title=f"Accuracy vs NFE ({bench})",
    )
    ax.grid(alpha=0.3)
    ax.margins(x=0.1, y=0.08)  # room for the k labels at the ends
    if lines:
        ax.legend(fontsize=8)
    fig.tight_layout()
    out = Path(path)
    fig.savefig(out)
    plt.close(fig)
    return out
