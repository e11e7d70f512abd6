"""Hydra callback: build the sweep's report once every job of a multirun has finished."""

from __future__ import annotations

import logging
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from backplay_exp.report.table import write_report

log = logging.getLogger(__name__)


class ReportCallback(Callback):
    """Writes report.csv / report.md into the sweep dir and prints the table."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        """Aggregate the sweep's `results.json` files."""
        table = write_report(config.hydra.sweep.dir)
        log.info("report written to %s\n%s", config.hydra.sweep.dir, table)
