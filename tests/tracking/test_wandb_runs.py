"""A toy sweep's W&B runs, read back from W&B's own offline files (`tests/tracking/wandb_files.py`).

Every job is one named run in the sweep's group with its whole config; the eval runs carry
what report.csv says; a stage resumed after a kill continues its run; what comes from the
cache logs no second run.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import TINY
from tests.tracking.wandb_files import runs

pytestmark = pytest.mark.slow
ROOT = Path(__file__).parents[2]
# the test-sized quickstart with the default logger (CSV + W&B offline), two k and both arms
SWEEP = [o for o in TINY if not o.startswith("logger=")] + [
    "head_train.max_steps=4", "task.batch_size=4",
    "remask=confidence,backplay_toy", "sampler.tokens_per_step=1,2",
]  # fmt: skip


def cli(cache: Path, *overrides: str, **kwargs) -> subprocess.CompletedProcess:
    env = {**os.environ, "BACKPLAY_CACHE_DIR": str(cache), "WANDB_MODE": "offline"}
    return subprocess.run(
        [sys.executable, "-m", "backplay_exp", *overrides], cwd=ROOT, env=env,
        capture_output=True, text=True, timeout=600, **kwargs,
    )  # fmt: skip


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("wandb")
    out, cache = tmp / "sweep", tmp / "cache"
    run = cli(cache, "+experiment=quickstart", *SWEEP, f"hydra.sweep.dir={out}")
    assert run.returncode == 0, run.stderr[-3000:]
    return out, cache


def test_every_job_is_a_named_run_in_the_sweeps_group_with_its_config(sweep):
    out, cache = sweep
    found = runs(out)
    by_type = {}
    for run in found:
        by_type.setdefault(run.job_type, []).append(run)
    assert sorted((t, len(r)) for t, r in by_type.items()) == [
        ("eval", 4), ("head", 1), ("report", 1), ("sft", 1),
    ]  # fmt: skip
    (report,) = by_type["report"]
    group = f"quickstart:{out.parent.name}/{out.name}"
    assert report.group == group and all(r.group == group for r in found)
    with (out / "report.csv").open() as f:
        rows = {(r["method"], int(r["tokens_per_step"])): r for r in csv.DictReader(f)}
    for run in by_type["eval"]:
        assert "paths.output_dir" not in run.config  # where a job writes is not what it is
        row = rows[(run.config["method"], run.config["sampler.tokens_per_step"])]
        assert run.name == f"{row['method']} k={row['tokens_per_step']} seed=0"
        assert set(run.tags) == {"quickstart", "tiny", "toy"}
        # the keys W&B filters and groups on, as results.json records them
        job = Path(row["job_dir"])
        recorded = json.loads((job / "results.json").read_text())
        for key in ("remask", "model", "artifact", "cache", "schedule", "seed", "config_signature"):
            assert run.config[key] == recorded[key], key
        assert run.config["tokens_per_step"] == recorded["tokens_per_step"]
        assert run.config["backbone.name"] == "tiny" and run.config["backbone.d_model"] == 32
        assert run.config["choice.remask"] in ("confidence", "backplay_toy")
        assert run.run_id == f"eval-{recorded['config_signature']}"
        # the summary is report.csv's row
        assert run.summary["accuracy"] == pytest.approx(float(row["accuracy"]))
        assert run.summary["nfe_mean"] == pytest.approx(float(row["nfe_mean"]))
        assert run.summary["remasks_mean"] == pytest.approx(float(row["remasks_mean"]))
        assert run.summary["problems"] == int(row["n"]) == 12
        low, high = run.summary["accuracy_ci95_low"], run.summary["accuracy_ci95_high"]
        assert 0 <= low <= run.summary["accuracy"] <= high <= 1
        assert run.summary["s_per_problem"] == pytest.approx(float(row["wall_s"]) / 12)
        assert run.summary["samples._type"] == "table-file"
        assert run.summary["samples.nrows"] == 12  # all 12 (the table's cap is 64)
    for kind in ("sft", "head"):
        (run,) = by_type[kind]
        stage = next(cache.glob(f"{kind}/*/done.json")).parent
        assert run.run_id == f"{kind}-{stage.name}" and run.name == f"{kind} seed=0"
        assert run.config["stage_signature"] == stage.name
        recipe = "sft" if kind == "sft" else "head_train"
        assert run.config[f"{recipe}.max_steps"] == (12 if kind == "sft" else 4)
    logged = {key.split(".")[0] for key in report.summary}
    assert {"frontier", "claims", "pareto", "report", "report_summary"} <= logged
    # the frontiers as W&B line charts over the frontier table: accuracy against NFE and time
    for chart, x in (("frontier_nfe", "nfe_mean"), ("frontier_wall", "s_per_problem")):
        assert f"{chart}_table" in logged
        panel = report.config[f"_wandb.visualize.{chart}"]["panel_config"]
        assert panel["panelDefId"] == "wandb/line/v0"
        assert panel["fieldSettings"] == {"x": x, "y": "accuracy", "stroke": "method"}


def test_a_rerun_from_the_cache_logs_no_second_run(sweep, tmp_path):
    _, cache = sweep
    again = tmp_path / "again"
    run = cli(cache, "+experiment=quickstart", *SWEEP, f"hydra.sweep.dir={again}")
    assert run.returncode == 0, run.stderr[-3000:]
    assert [r.job_type for r in runs(again)] == ["report"]  # stages and evals were cached


def test_a_stage_resumed_after_a_kill_continues_its_run(tmp_path):
    cache = tmp_path / "cache"
    stage = ["task=sft", *[o for o in TINY if not o.startswith(("logger=", "sft."))],
             "sft.max_steps=600", "sft.checkpoint_every=25", "sft.val_check_interval=1000",
             # a history row every step: W&B's first 32 KiB block is out within a second
             "trainer.log_every_n_steps=1",
             f"hydra.run.dir={tmp_path / 'run'}"]  # fmt: skip
    env = {**os.environ, "BACKPLAY_CACHE_DIR": str(cache), "WANDB_MODE": "offline"}
    proc = subprocess.Popen([sys.executable, "-m", "backplay_exp", *stage], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)  # fmt: skip
    deadline = time.monotonic() + 300

    def flushed() -> bool:  # W&B writes its run file in 32 KiB blocks: the first one is out
        files = list((tmp_path / "run").rglob("run-*.wandb"))
        return bool(files) and files[0].stat().st_size > 7

    while not (list(cache.glob("sft/*/checkpoints/last.ckpt")) and flushed()):
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    rerun = cli(cache, *stage)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    first, second = runs(tmp_path / "run")
    stage = next(cache.glob("sft/*/done.json")).parent
    assert first.run_id == second.run_id == f"sft-{stage.name}"
    assert first.name == second.name == "sft seed=0"


def test_an_eval_run_logs_its_trace_pages(tmp_path):
    one = [o for o in TINY if not o.startswith("logger=")]
    run = cli(tmp_path / "cache", "task=eval", *one, "task.batch_size=4", "task.trace_samples=2",
              f"hydra.run.dir={tmp_path / 'run'}")  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    (found,) = [r for r in runs(tmp_path / "run") if r.job_type == "eval"]
    pages = sorted((tmp_path / "run" / "traces").glob("*.html"))
    assert len(pages) == 2
    for page in pages:
        assert found.summary[f"traces/{page.stem}._type"] == "html-file"
