"""Every SLURM launch path against a real cluster: sbatch, squeue, scontrol, scancel, requeue.

The toy table goes through `hydra/launcher=slurm_gpu` as a user runs it (the preset
unchanged), and is compared with the same sweep through the local launcher; a job is
preempted at its time limit and requeued; an array task is cancelled; a table's launch
script runs its stages and sweep. The cluster is `conftest.slurm`'s (scripts/slurm_local.sh).
"""

from __future__ import annotations

import csv
import itertools
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from tests.cluster.conftest import (
    ROOT,
    TimeLimitDriver,
    array_id,
    environment,
    job_logs,
    scontrol_jobs,
)
from tests.conftest import TINY

pytestmark = [pytest.mark.slow, pytest.mark.slurm]

# an SFT stage long enough (about 13 s on an idle core) for every job of a sweep to reach its
# lock while it trains
LONG_SFT = {"sft.max_steps": 800, "sft.checkpoint_every": 100, "sft.val_check_interval": 250}
SMALL = [o for o in TINY if o.split("=")[0] not in LONG_SFT]
STAGES = [*SMALL, *(f"{k}={v}" for k, v in LONG_SFT.items()), "head_train.max_steps=4"]
# slurmctld sends a time-limit signal at its next periodic check, up to 30 s after it is due:
# a stage that trains on for about 30 s after its limit is cut (3500 steps at the ~120 steps/s
# of this tiny SFT on one idle core of a machine twice as fast as ours, 55-65 here) is in the
# middle of training when it comes
PREEMPTED_STEPS = 3600
PREEMPTED = [*SMALL, f"sft.max_steps={PREEMPTED_STEPS}", "sft.checkpoint_every=100",
             "sft.val_check_interval=500"]  # fmt: skip
TABLE = ["remask=confidence,backplay_toy", "sampler.tokens_per_step=1,4", "task.batch_size=4"]
# what a run's time changes, not its results
TIMING = ("wall_s", "tokens_per_s", "job_dir")


def start(sweep_dir: Path, cache: Path, *overrides: str) -> subprocess.Popen:
    """`python -m backplay_exp +experiment=quickstart ...` as a user types it, started."""
    cmd = [sys.executable, "-m", "backplay_exp", "+experiment=quickstart", *overrides,
           f"hydra.sweep.dir={sweep_dir}"]  # fmt: skip
    return subprocess.Popen(cmd, cwd=ROOT, env=environment(cache), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)  # fmt: skip


def finish(proc: subprocess.Popen, timeout: int = 900) -> str:
    """Wait for a started sweep; its console. It must have succeeded."""
    console, _ = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, console[-3000:]
    return console


def sweep(sweep_dir: Path, cache: Path, *overrides: str, timeout: int = 600):
    """The same, run to its end: the process (returncode, stdout, stderr)."""
    cmd = [sys.executable, "-m", "backplay_exp", "+experiment=quickstart", *overrides,
           f"hydra.sweep.dir={sweep_dir}"]  # fmt: skip
    return subprocess.run(
        cmd, cwd=ROOT, env=environment(cache), capture_output=True, text=True, timeout=timeout
    )


def table(sweep_dir: Path) -> dict[tuple[str, str], dict[str, str]]:
    """report.csv's rows by (method, k), without the timings."""
    with (sweep_dir / "report.csv").open() as f:
        rows = list(csv.DictReader(f))
    return {
        (r["method"], r["tokens_per_step"]): {k: v for k, v in r.items() if k not in TIMING}
        for r in rows
    }


def decoded(sweep_dir: Path) -> dict[tuple[str, int], list[tuple]]:
    """Each eval job's decodes (id, completion, NFE, remasks), by (remask, k)."""
    out = {}
    for path in sweep_dir.glob("*/results.json"):
        res = json.loads(path.read_text())
        lines = (path.parent / "samples.jsonl").read_text().splitlines()
        samples = sorted((json.loads(line) for line in lines), key=lambda s: s["id"])
        key = (res["remask"], res["tokens_per_step"])
        out[key] = [(s["id"], s["completion"], s["nfe"], s["remasks"]) for s in samples]
    return out


def count(logs: dict[str, str], text: str) -> int:
    return sum(log.count(text) for log in logs.values())


def test_the_toy_table_through_slurm_gpu_equals_the_local_launchers(
    slurm, tmp_path, record_property
):
    out, cache = tmp_path / "sweep", tmp_path / "cache"
    local_table = tmp_path / "local"  # the same sweep through the local launcher, meanwhile
    local = start(local_table, tmp_path / "local_cache", *STAGES, *TABLE, "hydra/launcher=local")
    console = finish(start(out, cache, *STAGES, *TABLE, "hydra/launcher=slurm_gpu"))
    finish(local)
    # the submitting process prints the report and the verdict of the claims
    assert "report of" in console and "SFT + confidence" in console
    verdict = (out / "claims.md").read_text().splitlines()
    assert verdict and all(line in console for line in verdict)
    assert "C1 " in verdict[1]
    assert "Bypassing sacct error" not in console  # submitit without accounting, each poll

    # each job requests what docs/cluster.md says the preset requests
    preset = OmegaConf.load(ROOT / "conf/hydra/launcher/slurm_gpu.yaml")
    cpus, mem_gb = preset.cpus_per_task, int(str(preset.mem_per_gpu).removesuffix("GB"))
    hours = preset.timeout_min // 60
    docs = (ROOT / "docs/cluster.md").read_text()
    assert f"{cpus} CPUs and {mem_gb} GB per GPU, {hours} h limit" in docs
    jobs = scontrol_jobs(array_id(out))
    assert len(jobs) == 4
    for job in jobs:
        assert job["JobName"] == "quickstart.eval"
        assert job["NumNodes"] == "1" and job["NumTasks"] == "1"
        assert job["CPUs/Task"] == str(cpus)
        assert job["TresPerNode"] == "gres:gpu:1"
        assert job["MemPerTres"] == f"gres:gpu:{mem_gb * 1024}"
        assert job["TimeLimit"] == f"{hours // 24}-{hours % 24:02d}:00:00"
        assert job["JobState"] == "COMPLETED"
    keys = ("JobName", "CPUs/Task", "TresPerNode", "MemPerTres", "TimeLimit")
    record_property("each job's request (scontrol)", {k: jobs[0][k] for k in keys})

    # each stage trained once, by one job, while another job waited on its lock
    logs = job_logs(out)
    assert count(logs, f"training stage {cache}/sft/") == 1
    assert count(logs, f"training stage {cache}/head/") == 1
    assert count(logs, "was trained by another job") >= 1

    assert table(out) == table(local_table)
    assert decoded(out) == decoded(local_table)


def test_a_job_at_its_time_limit_is_requeued_and_resumes_its_stage(
    slurm, tmp_path, record_property
):
    out, cache = tmp_path / "sweep", tmp_path / "cache"
    limit = [
        "hydra.launcher.timeout_min=10",  # cut to 1 minute once the stage trains
        "hydra.launcher.signal_delay_s=55",  # submitit's USR2: 5 s into a 1-minute limit
    ]
    only = ["remask=confidence", "sampler.tokens_per_step=4", "task.batch_size=4"]
    reference = tmp_path / "uninterrupted"  # the same sweep, no limit: meanwhile, locally
    plain = start(reference, tmp_path / "plain_cache", *PREEMPTED, *only, "hydra/launcher=local")
    driver = TimeLimitDriver(out, cache, long_limit_min=10)
    driver.start()
    try:
        run = start(out, cache, *PREEMPTED, *only, "hydra/launcher=slurm_gpu", *limit)
        finish(run)
    finally:
        driver.stop.set()
        driver.join()
    finish(plain)
    assert driver.cut, "the stage never saved a checkpoint"
    (log,) = job_logs(out).values()  # one job: every attempt appends to its log
    assert "Requeued job" in log
    # the steps each run of the job trained: contiguous, none lost, none twice
    runs = [line for line in log.splitlines() if "trained steps" in line]
    spans = [
        tuple(map(int, line.split("trained steps ")[1].split()[0].split(".."))) for line in runs
    ]
    steps = PREEMPTED_STEPS
    assert len(spans) >= 2 and spans[0][0] == 0 and spans[-1][1] == steps, runs
    assert all(a[1] == b[0] for a, b in itertools.pairwise(spans)), runs
    assert sum(b - a for a, b in spans) == steps
    assert all("preempted" in line for line in runs[:-1])
    record_property("steps trained by each run of the preempted stage", spans)

    # the table and the decodes of the uninterrupted sweep
    assert table(out) == table(reference)
    assert decoded(out) == decoded(reference)


def test_a_cancelled_array_task_is_a_failed_cell_and_a_rerun_computes_only_it(slurm, tmp_path):
    cache = tmp_path / "cache"
    cells = [*TINY, "remask=confidence", "sampler.tokens_per_step=1,2", "task.batch_size=4",
             "hydra/launcher=slurm_gpu"]  # fmt: skip
    first = tmp_path / "first"
    proc = start(first, cache, *cells)
    deadline = time.monotonic() + 300
    while not list(first.glob(".submitit/*_1/")):
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.2)
    task = f"{array_id(first)}_1"
    while subprocess.run(["squeue", "-h", "-j", task, "-o", "%T"], capture_output=True,
                         text=True).stdout.strip() != "RUNNING":  # fmt: skip
        assert time.monotonic() < deadline
        time.sleep(0.2)
    subprocess.run(["scancel", task], check=True)
    console = finish(proc)
    failed = json.loads((first / "1" / "results.json").read_text())
    assert failed["status"] == "failed" and "CANCELLED" in failed["error"]
    assert failed["tokens_per_step"] == 2 and failed["remask"] == "confidence"
    report = (first / "report.md").read_text()
    assert "| SFT + confidence | " in report and "failed" in report
    assert f"job {task} ended without a result (state: CANCELLED)" in console

    second = tmp_path / "second"
    rerun = sweep(second, cache, *cells)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    logs = job_logs(second)
    assert count(logs, "reused the results of an identical job") == 1  # k=1
    assert count(logs, "toy: accuracy") == 1  # k=2, decoded again
    assert all(r["status"] == "ok" for r in table(second).values())


def test_a_tables_launch_script_trains_its_stages_then_runs_its_sweep(
    slurm, tmp_path, record_property
):
    # docs/cluster.md's toy override of a real table, one sweep point
    toy = ["backbone=tiny", "data=toy", "benchmark=toy", "trainer=cpu",
           "~trainer@head_train.trainer", "eval_devices=1", "benchmark.chat_template=false",
           "benchmark.gen_length=32", "benchmark.block_length=16", "head.d_head=16",
           "head.n_heads=2", "head.n_layers=1", "head.conv_kernel=5", "head_train.max_steps=4",
           *SMALL, "remask=backplay", "sampler.tokens_per_step=2", "task.batch_size=4"]  # fmt: skip
    cache = tmp_path / "cache"
    run = subprocess.run(
        ["bash", str(ROOT / "launch/mbpp_tokens_sweep.sh"), *toy],
        cwd=tmp_path, env=environment(cache), capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    sweeps = sorted(p.parent for p in tmp_path.glob("multirun/*/*/multirun.yaml"))
    assert len(sweeps) == 3  # task=sft, task=head, then the eval sweep
    names = [scontrol_jobs(array_id(s))[0]["JobName"] for s in sweeps]
    assert names == ["mbpp_tokens_sweep.sft", "mbpp_tokens_sweep.head", "mbpp_tokens_sweep.eval"]
    record_property("job names of its three sweeps", names)
    sft, head, evals = (job_logs(s) for s in sweeps)
    assert count(sft, f"training stage {cache}/sft/") == 1
    assert count(head, f"training stage {cache}/head/") == 1
    assert count(evals, "training stage") == 0  # both stages came from the cache
    results = json.loads((sweeps[2] / "0" / "results.json").read_text())
    assert results["status"] == "ok" and results["remask"] == "backplay"
    console = run.stdout + run.stderr
    assert "report of" in console and "head(lbc) + backplay" in console


def test_a_partition_the_cluster_lacks_is_one_line_naming_the_key(slurm, tmp_path, record_property):
    run = sweep(tmp_path / "sweep", tmp_path / "cache", "hydra/launcher=slurm_gpu",
                "hydra.launcher.partition=a100")  # fmt: skip
    assert run.returncode == 1
    assert "Traceback" not in run.stderr
    last = run.stderr.strip().splitlines()[-1]
    assert last.startswith("hydra/launcher=slurm_gpu: sbatch refused the sweep's jobs (")
    assert "a100" in last and last.endswith("set hydra.launcher.partition to one of: gpu")
    record_property("its line", last)
