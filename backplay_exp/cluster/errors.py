"""One line a person can act on when a cluster refuses a sweep: what SLURM said, and the key to fix.

sbatch explains a refusal in one line ("invalid partition specified: gpux"); submitit wraps it
in a traceback and Hydra adds its own. The launcher turns it into a `LaunchError` that names
the `hydra.launcher.*` key behind it, and the entry point prints only that line.
"""

from __future__ import annotations

import shutil
import subprocess

# sbatch's words (lower case) -> the launcher key that decides them
SBATCH_KEYS = (
    ("invalid partition", "partition"),
    ("account", "account"),
    ("qos", "qos"),
    ("time limit", "timeout_min"),
    ("generic resource", "gpus_per_node"),
    ("gres", "gpus_per_node"),
    ("memory", "mem_per_gpu"),
    ("processors", "cpus_per_task"),
    ("node count", "nodes"),
    ("node configuration", "gpus_per_node, cpus_per_task or mem_per_gpu"),
)


class LaunchError(SystemExit):
    """A sweep that cannot be submitted; its message is the whole report (no traceback).

    A SystemExit, so that Hydra's error handler, which catches Exception, lets it through:
    Python prints the message and exits with status 1.
    """


def partitions() -> list[str]:
    """The cluster's partition names (empty where sinfo does not answer)."""
    try:
        run = subprocess.run(["sinfo", "--noheader", "--format=%R"], capture_output=True, text=True)
    except OSError:
        return []
    return sorted(set(run.stdout.split())) if run.returncode == 0 else []


def refused(launcher: str, sbatch_stderr: str) -> LaunchError:
    """The error for an sbatch refusal: sbatch's own words and the key to change."""
    said = "; ".join(
        line.removeprefix("sbatch: error: ").strip()
        for line in sbatch_stderr.strip().splitlines()
        if line.strip()
    )
    lower = said.lower()
    key = next((key for words, key in SBATCH_KEYS if words in lower), None)
    if key == "partition":
        known = partitions()
        fix = "set hydra.launcher.partition" + (f" to one of: {', '.join(known)}" if known else "")
    elif key is not None:
        fix = f"check hydra.launcher.{key}"
    else:
        fix = "check the hydra.launcher.* request (print it with --cfg hydra)"
    return LaunchError(
        f"hydra/launcher={launcher}: sbatch refused the sweep's jobs ({said}): {fix}"
    )


def check_slurm(launcher: str) -> None:
    """Raise a LaunchError unless SLURM's commands are here (sbatch to submit, srun to run)."""
    missing = [cmd for cmd in ("sbatch", "srun") if shutil.which(cmd) is None]
    if missing:
        raise LaunchError(
            f"hydra/launcher={launcher}: {' and '.join(missing)} not on PATH (no SLURM client "
            "here): submit from a SLURM login node, or run the sweep on this machine with "
            "hydra/launcher=local"
        )
