"""Hydra callback: build the sweep's report once every job of a multirun has finished.

Hydra calls `on_multirun_end` only when no job raised, which is why sweep jobs record their
failures in results.json instead of raising (`fail_fast: false`, tasks/runner.py).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from backplay_exp.report.table import (
    CSV_FIELDS,
    SUMMARY_FIELDS,
    collect,
    method_label,
    summary_rows,
    write_report,
)

log = logging.getLogger(__name__)


def log_report_to_wandb(sweep_dir: str | Path, wandb_cfg: DictConfig) -> None:
    """Log the sweep's table and Pareto plot as one W&B run (offline unless configured)."""
    import wandb

    sweep = Path(sweep_dir)
    rows = [{**r, "method": method_label(r)} for r in collect(sweep)]
    run = wandb.init(
        project=wandb_cfg.get("project", "backplay_exp"),
        mode="offline" if wandb_cfg.get("offline", True) else "online",
        dir=str(sweep),
        name=f"report-{sweep.name}",
        job_type="report",
        reinit="finish_previous",
    )
    table = wandb.Table(
        columns=list(CSV_FIELDS), data=[[r.get(c) for c in CSV_FIELDS] for r in rows]
    )
    summary = summary_rows(collect(sweep))  # over seeds: means and 95% intervals
    summary_table = wandb.Table(
        columns=list(SUMMARY_FIELDS), data=[[r.get(c) for c in SUMMARY_FIELDS] for r in summary]
    )
    run.log(
        {
            "report": table,
            "report_summary": summary_table,
            "pareto": wandb.Image(str(sweep / "pareto.png")),
        }
    )
    run.finish()


class ReportCallback(Callback):
    """Writes report.csv / report.md / pareto.png into the sweep dir and prints the table.

    Args:
        wandb: Also log the table and the plot to W&B when the config has a `logger.wandb`.
    """

    def __init__(self, wandb: bool = True) -> None:
        self.wandb = wandb

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        """Aggregate the sweep's `results.json` files."""
        sweep = config.hydra.sweep.dir
        table = write_report(sweep)
        log.info("report written to %s\n%s", sweep, table)
        wandb_cfg = (config.get("logger") or {}).get("wandb")
        if self.wandb and wandb_cfg:
            try:
                log_report_to_wandb(sweep, wandb_cfg)
            except Exception as err:  # the files are the report; W&B is a copy
                log.warning("could not log the report to W&B: %s", err)
