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


class TimeLimitDriver(threading.Thread):
    """Brings a job's time limit down once its stage trains, and releases it when requeued.

    SLURM's time limits are whole minutes, and a signal that comes before submitit has set
    its handler (while the job still imports) kills the job. So the job is submitted with a
    long limit and a `signal_delay_s` of nearly a minute; once the stage has saved its first
    checkpoint, its limit is cut to one minute, which puts the signal (limit - delay) in the
    past: SLURM sends it at once, in the middle of training, on a fast machine or a slow one.
    The requeued job gets its long limit back, and is made eligible at once (slurmctld holds
    a requeued job for two minutes).
    """

    def __init__(self, sweep: Path, cache: Path, long_limit_min: int) -> None:
        super().__init__(daemon=True)
        self.sweep, self.cache, self.long_limit = sweep, cache, long_limit_min
        self.stop = threading.Event()
        self.cut = False

    def run(self) -> None:
        while not self.stop.wait(0.25):
            folders = [p for p in self.sweep.glob(".submitit/*") if p.name.isdigit()]
            if not folders:
                continue
            job = folders[0].name
            state = subprocess.run(
                ["squeue", "--noheader", "--states=all", f"--jobs={job}", "--format=%T %r"],
                capture_output=True,
                text=True,
            ).stdout.split()
            if not self.cut and list(self.cache.glob("sft/*/checkpoints/last.ckpt")):
                subprocess.run(["scontrol", "update", f"jobid={job}", "TimeLimit=1"], check=True)
                self.cut = True
            elif self.cut and state[-1:] == ["BeginTime"]:
                subprocess.run(
                    ["scontrol", "update", f"jobid={job}", f"TimeLimit={self.long_limit}",
                     "StartTime=now"],
                    check=True,
                )  # fmt: skip


def scontrol_jobs(job: str) -> list[dict[str, str]]:
    """`scontrol show job` of a job (every task of an array), one dict per task."""
    out = subprocess.run(
        ["scontrol", "--oneliner", "show", "job", job], capture_output=True, text=True, check=True
    ).stdout
    return [dict(re.findall(r"([\w/:]+)=(\S*)", line)) for line in out.splitlines() if line]
