"""A finished job's JobReturn; a job that ended without a result becomes a failed cell.

A job cancelled, killed or timed out too often writes no `results.json`; the report would not
know its cell. Here the submitting process writes the job's `results.json` for it (`status:
failed`, the job's identity from its config, what the cluster said), and returns a completed
JobReturn with a NaN objective: Hydra then writes the report (it skips it when any JobReturn
failed), and a rerun of the command decodes only the cells whose results are not in the eval
cache.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.core.utils import JobReturn, JobStatus
from omegaconf import DictConfig, OmegaConf, open_dict

from backplay_exp.tasks.results import RESULTS_FILE, write_results

log = logging.getLogger(__name__)


def outcome(launcher: Any, job: Any, overrides: Sequence[str], idx: int) -> JobReturn:
    """The job's own JobReturn, or a failed record and a NaN one if it produced no result."""
    from submitit.core.utils import FailedJobError, UncompletedJobError

    try:
        return job.results()[0]
    except (UncompletedJobError, FailedJobError) as err:
        reason = f"job {job.job_id} ended without a result (state: {job.state})"
        last = str(err).strip().splitlines()
        if isinstance(err, FailedJobError) and last:
            reason = f"job {job.job_id} raised: {last[-1]}"
        return record_failure(launcher, list(overrides), idx, reason)


def job_config(launcher: Any, overrides: list[str], idx: int) -> DictConfig:
    """The config job `idx` ran with, Hydra's runtime (its output dir) set as in the job."""
    cfg = launcher.hydra_context.config_loader.load_sweep_config(launcher.config, overrides)
    with open_dict(cfg):
        cfg.hydra.job.num = idx
        out = Path(str(cfg.hydra.sweep.dir)) / str(cfg.hydra.sweep.subdir)
        cfg.hydra.runtime.output_dir = str(out.resolve())
    HydraConfig.instance().set_config(cfg)  # so that ${hydra:runtime.output_dir} resolves
    return cfg


def save_hydra_files(cfg: DictConfig, out: Path) -> None:
    """Write the `.hydra/` files the job would have (the report reads its overrides there)."""
    saved = out / ".hydra"
    saved.mkdir(parents=True, exist_ok=True)
    OmegaConf.save(OmegaConf.create(list(cfg.hydra.overrides.task)), saved / "overrides.yaml")
    task = OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"])
    OmegaConf.save(task, saved / "config.yaml")


def record_failure(launcher: Any, overrides: list[str], idx: int, reason: str) -> JobReturn:
    """Write job `idx`'s failed `results.json` (unless it wrote one) and return its JobReturn."""
    from backplay_exp.tasks.runner import identity_or_none

    cfg = job_config(launcher, overrides, idx)
    out = Path(cfg.hydra.runtime.output_dir)
    results = out / RESULTS_FILE
    if results.exists():  # the job recorded its own end (its results, or its failure)
        log.warning("#%d %s: %s; its results.json stays", idx, " ".join(overrides), reason)
    else:
        save_hydra_files(cfg, out)
        write_results(cfg, {**identity_or_none(cfg), "status": "failed", "error": reason})
        log.error("#%d %s: %s; recorded as failed", idx, " ".join(overrides), reason)
    return JobReturn(
        overrides=overrides,
        working_dir=str(out),
        task_name=str(cfg.hydra.job.name),
        status=JobStatus.COMPLETED,
        _return_value=float("nan"),
    )
