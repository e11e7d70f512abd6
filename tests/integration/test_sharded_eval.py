"""One eval job decoded by 2 gloo processes on CPU: the same files as 1 process; kill-safe."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from backplay_exp.tasks.runner import run_task
from tests.conftest import TINY

pytestmark = pytest.mark.slow
ROOT = Path(__file__).parents[2]
EVAL = ["task=eval", "task.batch_size=2", "sampler.tokens_per_step=2"]  # 12 problems, 6 batches
TIMINGS = ("wall_s", "tokens_per_s")


def run_files(out: Path) -> tuple[dict, list[dict]]:
    results = json.loads((out / "results.json").read_text())
    samples = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    return results, samples


def without_timings(records: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k not in TIMINGS} for r in records]


def same_results(a: dict, b: dict) -> None:
    for key in ("n", "accuracy", "nfe_mean", "remasks_mean", "edits_mean", "config_signature"):
        assert a[key] == b[key], key


def test_two_processes_write_what_one_writes(compose_cfg, tmp_path):
    one = compose_cfg(*EVAL)
    run_task(one)
    two = compose_cfg(*EVAL, "task.devices=2", "task.reuse=false")
    two.paths.output_dir = str(tmp_path / "two")
    run_task(two)  # same cache: the SFT stage is found, two processes decode
    (r1, s1), (r2, s2) = run_files(Path(one.paths.output_dir)), run_files(tmp_path / "two")
    assert (r1["ranks"], r2["ranks"]) == (1, 2)
    same_results(r1, r2)
    assert [s["id"] for s in s2] == [s["id"] for s in s1]  # problem order
    assert without_timings(s2) == without_timings(s1)
    assert not list((tmp_path / "two").glob("samples.rank*"))  # merged, then removed


def cli(out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "backplay_exp", *TINY, *EVAL, f"hydra.run.dir={out}", *extra]


def env(cache: Path) -> dict[str, str]:
    return {**os.environ, "BACKPLAY_CACHE_DIR": str(cache), "WANDB_MODE": "disabled"}


def test_a_killed_rank_loses_and_duplicates_nothing(tmp_path):
    cache, out = tmp_path / "cache", tmp_path / "job"
    one = cli(tmp_path / "one", "benchmark.n_problems=24")
    reference = subprocess.run(one, cwd=ROOT, env=env(cache), capture_output=True, text=True,
                               timeout=400)  # fmt: skip
    assert reference.returncode == 0, reference.stderr[-2000:]
    sharded = ("task.devices=2", "task.reuse=false", "benchmark.n_problems=24")
    proc = subprocess.Popen(cli(out, *sharded), cwd=ROOT, env=env(cache),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    deadline, shard = time.monotonic() + 300, out / "samples.rank1-of-2.jsonl"
    while not (shard.exists() and shard.read_text().count("\n") >= 2):  # a batch of rank 1
        assert proc.poll() is None and time.monotonic() < deadline, "decoding ended too early"
        time.sleep(0.05)
    ranks = [
        c for c in psutil.Process(proc.pid).children() if "spawn_main" in " ".join(c.cmdline())
    ]
    assert len(ranks) == 2
    youngest = max(ranks, key=lambda c: c.create_time())
    os.kill(youngest.pid, signal.SIGKILL)  # one rank dies mid-run
    assert proc.wait(timeout=120) != 0  # the job fails; the other rank is stopped
    assert not (out / "results.json").exists()

    rerun = subprocess.run(cli(out, *sharded), cwd=ROOT, env=env(cache),
                           capture_output=True, text=True, timeout=400)  # fmt: skip
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    (r1, s1), (r2, s2) = run_files(tmp_path / "one"), run_files(out)
    same_results(r1, r2)
    ids = [s["id"] for s in s2]
    assert len(ids) == len(set(ids)) == 24  # nothing lost, nothing twice
    assert without_timings(s2) == without_timings(s1)
