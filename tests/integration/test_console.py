"""The quickstart's console, as a newcomer reads it: each stage's line and progress bar, no ads."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # the real CLI in a subprocess: imports, two stages, a sweep

ROOT = Path(__file__).parents[2]
# the quickstart at test size; the default logger (CSV + W&B offline) and progress bars, unlike
# the other tests, because they are what this test reads
TINY_QUICKSTART = [
    "sft.max_steps=12", "sft.val_check_interval=6", "sft.checkpoint_every=6",
    "head_train.max_steps=8", "head_train.val_check_interval=4", "head_train.checkpoint_every=4",
    "data.n_train=512", "data.n_val=64", "data.batch_size=16",
    "backbone.d_model=32", "backbone.n_layers=2", "backbone.n_heads=2",
    "benchmark.n_problems=12", "task.batch_size=4", "sampler.tokens_per_step=1,4",
    "progress_every=2",
]  # fmt: skip
# what a first run must not print: third-party advertisements, banners and known-harmless
# deprecation warnings (each seen on the quickstart's console before they were silenced)
NOISE = [
    "💡", "litlogger", "litmodels", "Tip:",  # Lightning's advertisements
    "anonymous setting", "wandb leet", "Tracking run with wandb",  # W&B's banners
    "LeafSpec", "DeprecationWarning", "FutureWarning",  # Lightning vs torch deprecations
    "eval mode at the start of training",  # Lightning on a frozen backbone (intended)
    "GPU available", "TPU available", "Seed set to",  # Lightning's accelerator/seed banners
]  # fmt: skip


def bar_with_eta(text: str, description: str, total: int) -> bool:
    """A tqdm bar `<description>...| total/total [elapsed<remaining...` somewhere in `text`."""
    pattern = rf"{re.escape(description)}.*\|\s*{total}/{total} \[\d+:\d\d<\d+:\d\d"
    return re.search(pattern, text) is not None


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("console")
    env = {**os.environ, "BACKPLAY_CACHE_DIR": str(tmp / "cache"), "WANDB_MODE": "offline"}
    cmd = [sys.executable, "-m", "backplay_exp", "+experiment=quickstart", *TINY_QUICKSTART,
           f"hydra.sweep.dir={tmp / 'sweep'}"]  # fmt: skip
    run = subprocess.run(cmd, cwd=tmp, env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    return run, tmp / "sweep"


def test_first_run_prints_no_advertisement_banner_or_deprecation(first_run):
    run, _ = first_run
    console = run.stdout + run.stderr
    assert [n for n in NOISE if n in console] == []


def test_each_stage_says_what_it_does_with_a_progress_bar_and_eta(first_run):
    run, _ = first_run
    console = run.stdout + run.stderr
    assert "SFT: fine-tuning tiny" in console
    assert "head: training a" in console and "frozen SFT tiny" in console
    assert bar_with_eta(run.stderr, "SFT", 12)
    assert bar_with_eta(run.stderr, "head", 8)
    assert bar_with_eta(run.stderr, "eval toy", 3)  # 12 problems in batches of 4


def test_the_last_lines_are_the_table_the_verdict_and_where_the_report_is(first_run):
    run, sweep = first_run
    tail = run.stdout.strip().splitlines()[-10:]
    table = next(i for i, line in enumerate(tail) if line.startswith("| head(lbc) + backplay |"))
    # k = 1 and 4: C1 is judged; C2 needs confidence at k=2 for its NFE comparison
    verdict = tail[table + 2 : table + 4]
    assert verdict[0].startswith("The paper's claims on this sweep (one training seed")
    assert re.fullmatch(r"C1 (holds|fails): confidence decoding drops .* points .*", verdict[1])
    assert (sweep / "claims.md").read_text().splitlines() == verdict
    assert f"table: {sweep / 'report.md'} (also report.csv)" in tail[-3:]
    assert any(line == f"plot:  {sweep / 'pareto.png'}" for line in tail[-2:])
    assert (sweep / "report.md").exists() and (sweep / "pareto.png").exists()
