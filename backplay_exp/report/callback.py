"""Hydra callback: build the sweep's report once every job of a multirun has finished.

Hydra calls `on_multirun_end` only when no job raised, which is why sweep jobs record their
failures in results.json instead of raising (`fail_fast: false`, tasks/runner.py).
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from backplay_exp.report.claims import measured, write_verdict
from backplay_exp.report.claimset import ClaimSet
from backplay_exp.report.jobs import collect, method_label, seed_cells
from backplay_exp.report.table import CSV_FIELDS, SUMMARY_FIELDS, summary_rows, write_report
from backplay_exp.tasks.tracking import sweep_group, wandb_logger

log = logging.getLogger(__name__)


def frontier_rows(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (method, k) cell: mean accuracy, NFE and seconds per problem over seeds."""
    cells, _ = seed_cells(results)
    rows = []
    for cell in cells:
        if not cell.jobs:
            continue
        rows.append(
            {
                "method": cell.method,
                "k": cell.tokens_per_step,
                "accuracy": cell.stat("accuracy")[0],
                "nfe_mean": cell.stat("nfe_mean")[0],
                "s_per_problem": cell.stat(lambda j: j["wall_s"] / j["n"])[0],
                "seeds": len(cell.jobs),
            }
        )
    return sorted(rows, key=lambda r: (r["method"], r["k"]))


def log_report_to_wandb(
    sweep_dir: str | Path,
    wandb_cfg: DictConfig,
    experiment: str | None = None,
    claim_set: ClaimSet | None = None,
) -> str:
    """Log the sweep's report as its W&B run (`job_type` report, in the sweep's group).

    The frontiers as W&B charts (accuracy against NFE and against seconds per problem, a line
    per method through its k), the table of every job, the table over seeds, the claims and
    the Pareto image.

    Returns:
        Where the run is: its directory (offline, for `wandb sync`) or its URL.
    """
    import wandb

    sweep = Path(sweep_dir)
    group = sweep_group(experiment, sweep)
    key = hashlib.sha256(str(sweep.resolve()).encode()).hexdigest()[:12]
    meta = {
        "name": f"report {group}",
        "id": f"report-{key}",
        "group": group,
        "job_type": "report",
        "tags": [experiment] if experiment else [],
        "config": {"sweep": str(sweep), "experiment": experiment},
    }
    run = wandb_logger(wandb_cfg, sweep, meta).experiment
    results = collect(sweep)
    rows = [{**r, "method": method_label(r)} for r in results]
    table = wandb.Table(
        columns=list(CSV_FIELDS), data=[[r.get(c) for c in CSV_FIELDS] for r in rows]
    )
    summary = summary_rows(results)  # over seeds: means and 95% intervals
    summary_table = wandb.Table(
        columns=list(SUMMARY_FIELDS), data=[[r.get(c) for c in SUMMARY_FIELDS] for r in summary]
    )
    fields = ("method", "k", "accuracy", "nfe_mean", "s_per_problem", "seeds")
    frontier = wandb.Table(
        columns=list(fields), data=[[r[f] for f in fields] for r in frontier_rows(results)]
    )
    payload: dict[str, Any] = {
        "report": table,
        "report_summary": summary_table,
        "frontier": frontier,
        "frontier_nfe": wandb.plot.line(
            frontier, "nfe_mean", "accuracy", stroke="method", title="accuracy vs NFE (k = 1..)"
        ),
        "frontier_wall": wandb.plot.line(
            frontier, "s_per_problem", "accuracy", stroke="method", title="accuracy vs s/problem"
        ),
        "pareto": wandb.Image(str(sweep / "pareto.png")),
    }
    if claim_set is not None:
        found = [c for c in measured(sweep, claim_set) if c.complete]
        payload["claims"] = wandb.Table(
            columns=["claim", "verdict", "line"],
            data=[[c.name, c.run_verdict(), c.line()] for c in found],
        )
    run.log(payload)
    offline = wandb_cfg.get("offline", True)
    where = f"{Path(run.dir).parent} (offline: `wandb sync` it)" if offline else str(run.url)
    run.finish()
    return where


class ReportCallback(Callback):
    """Writes report.csv / report.md / pareto.png into the sweep dir; prints the table last.

    Args:
        wandb: Also log the table and the plot to W&B when the config has a `logger.wandb`.
        claims: The paper's claims this sweep measures (`conf/claims/`): their verdict lines
            are printed after the table and written to claims.md.
    """

    def __init__(self, wandb: bool = True, claims: ClaimSet | None = None) -> None:
        self.wandb, self.claims = wandb, claims

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        """Aggregate the sweep's `results.json` files."""
        sweep = Path(config.hydra.sweep.dir)
        table = write_report(sweep)
        verdict = write_verdict(sweep, self.claims) if self.claims is not None else ""
        wandb_cfg = (config.get("logger") or {}).get("wandb")
        copy = ""
        if self.wandb and wandb_cfg:
            experiment = config.hydra.runtime.choices.get("experiment")
            try:
                where = log_report_to_wandb(sweep, wandb_cfg, experiment, self.claims)
                copy = f"\nW&B copy: {where}"
            except Exception as err:  # the files are the report; W&B is a copy
                log.warning("could not log the report to W&B: %s", err)
        log.info(
            "report of %s\n%s\n%stable: %s (also report.csv)\nplot:  %s%s",
            sweep,
            table.rstrip(),
            f"\n{verdict}\n" if verdict else "",
            sweep / "report.md",
            sweep / "pareto.png",
            copy,
        )
