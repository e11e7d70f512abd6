"""The quickstart sweep through the real CLI: interrupted and resumed, and via submitit."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import TINY

pytestmark = pytest.mark.slow
ROOT = Path(__file__).parents[2]


def sweep_cmd(sweep_dir: Path, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "backplay_exp", "+experiment=quickstart", *TINY,
        "remask=confidence", "sampler.tokens_per_step=1,2,3",
        "task.batch_size=4", "head_train.max_steps=4", f"hydra.sweep.dir={sweep_dir}", *extra,
    ]  # fmt: skip


def env(cache: Path) -> dict[str, str]:
    return {**os.environ, "BACKPLAY_CACHE_DIR": str(cache), "WANDB_MODE": "disabled"}


def job_results(sweep: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(sweep.glob("*/results.json"))]


def test_sigkill_mid_sweep_then_rerun_loses_and_duplicates_nothing(tmp_path):
    sweep, cache = tmp_path / "sweep", tmp_path / "cache"
    proc = subprocess.Popen(sweep_cmd(sweep), cwd=ROOT, env=env(cache), start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.monotonic() + 240
    while not (sweep / "1" / "samples.jsonl").exists():  # job 0 done, job 1 decoding
        assert proc.poll() is None and time.monotonic() < deadline, "sweep ended too early"
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    sft_done = next(cache.glob("sft/*/done.json"))
    trained_at = sft_done.stat().st_mtime_ns

    rerun = subprocess.run(sweep_cmd(sweep), cwd=ROOT, env=env(cache), capture_output=True,
                           text=True, timeout=300)  # fmt: skip
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert sft_done.stat().st_mtime_ns == trained_at  # the finished stage was not retrained
    assert "training stage" not in rerun.stderr
    results = job_results(sweep)
    assert [r["tokens_per_step"] for r in results] == [1, 2, 3]
    assert all(r["status"] == "ok" and r["n"] == 12 for r in results)
    for job in sweep.glob("[0-9]*"):
        ids = [json.loads(line)["id"] for line in (job / "samples.jsonl").read_text().splitlines()]
        assert len(ids) == len(set(ids)) == 12  # nothing lost, nothing twice
    assert (sweep / "report.md").exists() and (sweep / "pareto.png").exists()


def test_the_same_sweep_through_submitit_local(tmp_path):
    sweep, cache = tmp_path / "sweep", tmp_path / "cache"
    run = subprocess.run(sweep_cmd(sweep, "hydra/launcher=local"), cwd=ROOT, env=env(cache),
                         capture_output=True, text=True, timeout=400)  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    results = job_results(sweep)
    assert sorted(r["tokens_per_step"] for r in results) == [1, 2, 3]
    assert all(r["status"] == "ok" for r in results)
    assert list(sweep.glob(".submitit/*"))  # the jobs went through submitit
    assert "k=3" in (sweep / "report.md").read_text()
