"""Runs a task with the bookkeeping every task needs: seeding and failure recording.

In a sweep (`fail_fast: false`) a failing job writes `results.json` with `status: failed` and
returns NaN metrics instead of raising, because Hydra skips `on_multirun_end` (the report) when
any job raises.
"""

from __future__ import annotations

import logging
import traceback
from typing import Any

import lightning as L
from hydra.utils import get_method
from omegaconf import DictConfig

from backplay_exp.tasks.identity import job_identity
from backplay_exp.tasks.results import write_results
from backplay_exp.utils import reproducible

log = logging.getLogger(__name__)


def run_task(cfg: DictConfig) -> dict[str, float]:
    """Seed, call `cfg.task` with the whole config and its flags, and record failures.

    `reproducible=true` sets the bit-reproducible mode first (`utils/reproducible.py`).

    The task function is called directly (not through `hydra.utils.call`) so that its own
    exception reaches the user instead of an InstantiationException wrapper.
    """
    reproducible.apply(cfg.get("reproducible", False), cfg.get("reproducible_threads", 2))
    L.seed_everything(cfg.seed, workers=True)
    task = get_method(cfg.task._target_)
    flags = {k: v for k, v in cfg.task.items() if not str(k).startswith("_")}
    try:
        return task(cfg, **flags)
    except Exception as err:
        if cfg.fail_fast:
            raise
        log.exception("job failed; recorded in results.json")
        write_results(
            cfg,
            {
                **identity_or_none(cfg),
                "status": "failed",
                "error": f"{type(err).__name__}: {err}",
                "traceback": traceback.format_exc(),
            },
        )
        return {"accuracy": float("nan")}
    finally:
        _close_wandb()


def identity_or_none(cfg: DictConfig) -> dict[str, Any]:
    """The failed job's identity (its table cell), or nothing if the config cannot say it."""
    try:
        return job_identity(cfg)
    except Exception as err:  # the failure itself is what results.json must record
        log.warning("a failed job whose cell cannot be named (%s)", err)
        return {}


def _close_wandb() -> None:
    """Finish a W&B run left open by a logger (safe when wandb was never used)."""
    import sys

    wandb = sys.modules.get("wandb")
    if wandb is not None and getattr(wandb, "run", None) is not None:
        wandb.finish()
