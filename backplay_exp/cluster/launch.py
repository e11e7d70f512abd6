"""Submitting a sweep's jobs through submitit and waiting for all of them, whatever becomes of each.

Hydra's submitit launcher submits the jobs as one array and then waits for each job's result
in turn: the first job that ends without one (cancelled, timed out too often, killed) raises,
Hydra skips the report, and on a cluster without accounting that job is never seen to end.
`launch_sweep` does the same submission, reports a refused one in one line
(`errors.py`), watches the jobs with a watcher that works without accounting (`watcher.py`),
shows a progress bar over the jobs, and turns every job that ended without a result into a
failed cell of the report (`outcome.py`), so that the report is always written and a rerun
of the command recomputes only the failed cells.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, filter_overrides
from omegaconf import OmegaConf
from tqdm.auto import tqdm

from backplay_exp.cluster.errors import LaunchError, check_slurm, refused
from backplay_exp.cluster.outcome import outcome

log = logging.getLogger(__name__)


def launcher_name(launcher: Any) -> str:
    """The `hydra/launcher=` option in use (`slurm_gpu`, `local`), for messages."""
    choices = launcher.config.hydra.runtime.choices
    return str(choices.get("hydra/launcher") or launcher._EXECUTOR)


def make_executor(launcher: Any) -> Any:
    """A submitit executor with the launcher's parameters (as Hydra's launcher builds it)."""
    import submitit
    from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf

    cluster = launcher._EXECUTOR
    params = dict(launcher.params)
    init = {"folder": params.pop("submitit_folder")}
    if "max_num_timeout" in params:
        init[f"{cluster}_max_num_timeout"] = params.pop("max_num_timeout")
    executor = submitit.AutoExecutor(cluster=cluster, **init)
    shared = set(OmegaConf.structured(BaseQueueConf).keys())
    executor.update_parameters(
        **{k if k in shared else f"{cluster}_{k}": v for k, v in params.items()}
    )
    return executor


def submit(launcher: Any, executor: Any, job_params: list[tuple[Any, ...]]) -> list[Any]:
    """Submit the jobs as one array; a refusal becomes a LaunchError naming the key to fix."""
    from submitit.core.utils import FailedJobError

    stderr = io.StringIO()  # submitit prints sbatch's complaint itself; the error says it once
    try:
        with contextlib.redirect_stderr(stderr):
            return executor.map_array(launcher, *zip(*job_params, strict=True))
    except FailedJobError as err:
        raise refused(launcher_name(launcher), str(err) or stderr.getvalue()) from None


def wait(jobs: Sequence[Any], poll_s: float = 1.0) -> None:
    """Block until every job is done, with a progress bar over them."""
    pending = set(range(len(jobs)))
    # the bar redraws when a job ends, or every minute (a SLURM sweep can wait for hours)
    with tqdm(total=len(jobs), desc="sweep jobs", unit="job", mininterval=60) as bar:
        while pending:
            finished = {i for i in pending if jobs[i].done()}
            if finished:
                pending -= finished
                bar.update(len(finished))
            if pending:
                time.sleep(poll_s)


def launch_sweep(
    launcher: Any, job_overrides: Sequence[Sequence[str]], initial_job_idx: int
) -> list[JobReturn]:
    """Submit one job per override list, wait for all, and return one JobReturn each.

    Args:
        launcher: The Hydra submitit launcher (its `params`, `config`, `hydra_context`).
        job_overrides: Each job's sweep overrides.
        initial_job_idx: The number of the first job (its sweep subdirectory).
    """
    name = launcher_name(launcher)
    if launcher._EXECUTOR == "slurm":
        check_slurm(name)
    executor = make_executor(launcher)
    sweep_dir = Path(str(launcher.config.hydra.sweep.dir))
    sweep_dir.mkdir(parents=True, exist_ok=True)
    if "mode" in launcher.config.hydra.sweep:
        os.chmod(sweep_dir, mode=int(str(launcher.config.hydra.sweep.mode), 8))
    job_params = []
    for idx, overrides in enumerate(job_overrides, start=initial_job_idx):
        log.info("\t#%d : %s", idx, " ".join(filter_overrides(overrides)))
        state = Singleton.get_state()
        job_params.append((list(overrides), "hydra.sweep.dir", idx, f"job_id_for_{idx}", state))
    jobs = submit(launcher, executor, job_params)
    if launcher._EXECUTOR == "slurm":
        from backplay_exp.cluster.watcher import make_watcher

        watcher = make_watcher()
        for job in jobs:
            job.watcher = watcher
        array = jobs[0].job_id.split("_")[0]
        log.info(
            "submitted %d jobs as SLURM array %s (squeue -j %s; logs: %s)",
            len(jobs),
            array,
            array,
            jobs[0].paths.folder,
        )
    wait(jobs)
    numbered = enumerate(zip(jobs, job_overrides, strict=True), start=initial_job_idx)
    return [outcome(launcher, job, overrides, idx) for idx, (job, overrides) in numbered]


__all__ = ["LaunchError", "launch_sweep"]
