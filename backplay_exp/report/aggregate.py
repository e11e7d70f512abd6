"""Cells of a sweep's table: one job, or the mean of the jobs that differ only in their seed.

When a sweep varies the training `seed`, the jobs of a (method, k) cell are the same
experiment repeated; the cell reports their mean and a 95% confidence interval of that mean
(Student's t with n - 1 degrees of freedom: `t * sd / sqrt(n)`), and n. A cell of one job keeps
its own numbers (interval 0), so a single-seed sweep reads as before. Failed jobs are counted
apart and left out of the mean.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

CONFIDENCE = 0.95


def mean_ci(values: Sequence[float]) -> tuple[float, float]:
    """Mean and the half-width of its 95% t-interval (0 for fewer than two values)."""
    n = len(values)
    mean = sum(values) / n
    if n < 2:
        return mean, 0.0
    from scipy.stats import t

    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    return mean, float(t.ppf(0.5 + CONFIDENCE / 2, n - 1)) * sd / math.sqrt(n)


@dataclass
class Cell:
    """One (method, k) cell: its jobs, and the mean ± 95% half-width of their metrics."""

    method: str
    tokens_per_step: Any
    jobs: list[dict[str, Any]]
    failed: int

    @property
    def n_seeds(self) -> int:
        """Finished jobs (one per seed) in the cell."""
        return len(self.jobs)

    def stat(
        self, key: str | Callable[[dict[str, Any]], float], scale: float = 1.0
    ) -> tuple[float, float]:
        """Mean and 95% half-width of `key` over the cell's jobs, times `scale`.

        `key` is a field of results.json or a function of a job's results.
        """
        value = key if callable(key) else (lambda job: float(job[key]))
        return mean_ci([scale * value(j) for j in self.jobs])


def cells(evals: Sequence[dict[str, Any]], label: Callable[[dict[str, Any]], str]) -> list[Cell]:
    """Group a sweep's eval jobs by (method, k), in the order they first appear."""
    groups: dict[tuple[str, Any], list[dict[str, Any]]] = defaultdict(list)
    for r in evals:
        groups[(label(r), r.get("tokens_per_step"))].append(r)
    return [
        Cell(
            method=method,
            tokens_per_step=k,
            jobs=[j for j in jobs if j.get("status") == "ok"],
            failed=sum(j.get("status") != "ok" for j in jobs),
        )
        for (method, k), jobs in groups.items()
    ]
