"""A real SLURM cluster for the launch tests: the one running here, else scripts/slurm_local.sh's.

Where none runs, the fixture starts the script's one-node cluster when it can (root, Debian's
slurm-wlm installed or installable) and skips with the reason otherwise. It leaves the
cluster running (the next test session finds it); `bash scripts/slurm_local.sh stop` stops it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
SCRIPT = ROOT / "scripts" / "slurm_local.sh"


@pytest.fixture(scope="session")
def slurm() -> None:
    """A SLURM cluster that takes jobs, or a skip that says why there is none."""
    if subprocess.run(["bash", str(SCRIPT), "status"], capture_output=True).returncode == 0:
        return
    if os.geteuid() != 0:
        pytest.skip(
            "no SLURM cluster here, and starting one needs root: "
            "sudo bash scripts/slurm_local.sh start"
        )
    if not (shutil.which("slurmctld") or shutil.which("apt-get")):
        pytest.skip("no SLURM cluster here, and no apt-get to install Debian's slurm-wlm")
    start = subprocess.run(
        ["bash", str(SCRIPT), "start"], capture_output=True, text=True, timeout=900
    )
    if start.returncode != 0:
        why = start.stderr.strip()[-800:]
        pytest.skip(f"scripts/slurm_local.sh could not start a cluster: {why}")


def environment(cache: Path, **extra: str) -> dict[str, str]:
    """The submitting process's environment (SLURM's jobs inherit it): this venv first."""
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    return {
        **os.environ,
        "PATH": path,
        "BACKPLAY_CACHE_DIR": str(cache),
        "WANDB_MODE": "disabled",
        "OMP_NUM_THREADS": "1",
        **extra,
    }


def job_logs(sweep: Path) -> dict[str, str]:
    """Each job's log (stdout and stderr, every attempt of a requeued job), by job id."""
    logs: dict[str, str] = {}
    for path in sorted(sweep.glob(".submitit/*/*_log.*")):
        task = path.parent.name
        logs[task] = logs.get(task, "") + path.read_text(errors="replace")
    return logs


def array_id(sweep: Path) -> str:
    """The SLURM job of a sweep: its array (tasks' folders `<array>_<task>`) or its one job."""
    folders = sweep.glob(".submitit/*")
    ids = {m[1] for p in folders if (m := re.fullmatch(r"(\d+)(_\d+)?", p.name))}
    assert len(ids) == 1, ids
    return ids.pop()


def release_requeued(stop: threading.Event) -> None:
    """Make requeued jobs eligible at once until `stop` is set.

    slurmctld holds a requeued job for two minutes (its EligibleTime, hard-coded) before it
    may start again; a test need not wait for it.
    """
    while not stop.wait(1):
        held = subprocess.run(
            ["squeue", "--noheader", "--states=PENDING", "--format=%i %r"],
            capture_output=True,
            text=True,
        ).stdout.split("\n")
        for line in held:
            job, _, reason = line.partition(" ")
            if reason == "BeginTime":
                subprocess.run(["scontrol", "update", f"jobid={job}", "StartTime=now"])


def scontrol_jobs(job: str) -> list[dict[str, str]]:
    """`scontrol show job` of a job (every task of an array), one dict per task."""
    out = subprocess.run(
        ["scontrol", "--oneliner", "show", "job", job], capture_output=True, text=True, check=True
    ).stdout
    return [dict(re.findall(r"([\w/:]+)=(\S*)", line)) for line in out.splitlines() if line]
