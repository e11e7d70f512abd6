"""The launcher's pieces that need no cluster: sbatch refusals, squeue lines, a missing client."""

import os
import subprocess
import sys
from pathlib import Path

from backplay_exp.cluster.errors import LaunchError, refused
from backplay_exp.cluster.watcher import PURGED, SqueueWatcher

ROOT = Path(__file__).parents[2]


def test_each_sbatch_refusal_names_the_launcher_key_behind_it(monkeypatch):
    monkeypatch.setattr("backplay_exp.cluster.errors.partitions", lambda: ["gpu", "debug"])
    cases = {
        "sbatch: error: invalid partition specified: a100": "set hydra.launcher.partition to "
        "one of: gpu, debug",
        "sbatch: error: Batch job submission failed: Invalid account or account/partition "
        "combination specified": "check hydra.launcher.account",
        "sbatch: error: Batch job submission failed: Invalid qos specification": "check "
        "hydra.launcher.qos",
        "sbatch: error: Batch job submission failed: Requested time limit is invalid (missing "
        "or exceeds some limit)": "check hydra.launcher.timeout_min",
        "sbatch: error: Batch job submission failed: Invalid generic resource (gres) "
        "specification": "check hydra.launcher.gpus_per_node",
        "sbatch: error: Batch job submission failed: Something new": "check the "
        "hydra.launcher.* request (print it with --cfg hydra)",
    }
    for said, fix in cases.items():
        err = refused("slurm_gpu", said)
        assert isinstance(err, LaunchError) and isinstance(err, SystemExit)
        message = str(err)
        assert message.startswith("hydra/launcher=slurm_gpu: sbatch refused the sweep's jobs (")
        assert "sbatch: error:" not in message and message.endswith(fix), message


def test_squeue_lines_are_read_as_job_states_and_a_job_it_no_longer_lists_is_done():
    watcher = SqueueWatcher(delay_s=1)
    for job in ("12_0", "12_1", "12_2", "12_3", "13"):
        watcher.register_job(job)
    states = watcher.read_info("JobID|State\n12_0|COMPLETED\n12_1|RUNNING\n12_[2-3%16]|PENDING\n")
    assert {j: s["State"] for j, s in states.items()} == {
        "12_0": "COMPLETED", "12_1": "RUNNING", "12_2": "PENDING", "12_3": "PENDING",
    }  # fmt: skip
    assert watcher._make_command()[-1] == "--jobs=12,13"
    # squeue answered for 12's tasks but no longer lists 13: it finished and was purged
    watcher._info_dict.update(states)
    for job in set(watcher._registered) - set(states):
        watcher._info_dict[job] = {"State": PURGED}
    assert watcher.is_done("13", mode="cache") and watcher.is_done("12_0", mode="cache")
    assert not watcher.is_done("12_1", mode="cache")


def test_without_sbatch_on_path_the_slurm_preset_says_so_in_one_line(tmp_path):
    env = {"HOME": os.environ.get("HOME", "/root"), "PATH": str(Path(sys.executable).parent),
           "BACKPLAY_CACHE_DIR": str(tmp_path / "cache")}  # fmt: skip
    run = subprocess.run(
        [sys.executable, "-m", "backplay_exp", "+experiment=quickstart",
         "hydra/launcher=slurm_gpu", f"hydra.sweep.dir={tmp_path / 'sweep'}"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert run.returncode == 1 and "Traceback" not in run.stderr
    assert run.stderr.strip().splitlines()[-1] == (
        "hydra/launcher=slurm_gpu: sbatch and srun not on PATH (no SLURM client here): submit "
        "from a SLURM login node, or run the sweep on this machine with hydra/launcher=local"
    )
