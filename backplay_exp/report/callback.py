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

from backplay_exp.report.claims import write_verdict
from backplay_exp.report.claimset import ClaimSet
from backplay_exp.report.jobs import collect, method_label
from backplay_exp.report.table import CSV_FIELDS, SUMMARY_FIELDS, summary_rows, write_report

log = logging.getLogger(__name__)


def log_report_to_wandb(sweep_dir: str | Path, wandb_cfg: DictConfig) -> str:
    """Log the sweep's table and Pareto plot as one W&B run (offline unless configured).

    Returns:
        Where the run is: its directory (offline, for `wandb sync`) or its URL.
    """
    import wandb
    from hydra.utils import instantiate

    sweep = Path(sweep_dir)
    rows = [{**r, "method": method_label(r)} for r in collect(sweep)]
    settings = wandb_cfg.get("settings")
    offline = wandb_cfg.get("offline", True)
    run = wandb.init(
        project=wandb_cfg.get("project", "backplay_exp"),
        mode="offline" if offline else "online",
        dir=str(sweep),
        name=f"report-{sweep.name}",
        job_type="report",
        reinit="finish_previous",
        settings=instantiate(settings) if settings else None,
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
            try:
                copy = f"\nW&B copy: {log_report_to_wandb(sweep, wandb_cfg)}"
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
