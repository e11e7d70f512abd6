"""SLURM requests sized to the job: composed launcher configs, and the sharded eval via submitit."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from tests.conftest import TINY

ROOT = Path(__file__).parents[2]
TABLES = [
    "table1_smdm_gsm8k", "mbpp_tokens_sweep", "humaneval_tokens_sweep", "gsm8k_tokens_sweep",
    "math_tokens_sweep", "mbpp_uniform_ablation", "gsm8k_uniform_ablation", "gsm8k_random_remask",
]  # fmt: skip


def request(cfg) -> dict:
    launcher = cfg.hydra.launcher
    keys = ("nodes", "tasks_per_node", "gpus_per_node")
    return {k: OmegaConf.select(cfg, f"hydra.launcher.{k}") for k in keys} | {
        "mem_per_gpu": launcher.mem_per_gpu
    }


@pytest.mark.parametrize("table", TABLES)
def test_each_job_requests_the_gpus_it_runs_on(compose_cfg, table):
    for task in ("eval", "sft", "head", "joint"):
        cfg = compose_cfg(
            f"+experiment={table}", f"task={task}", "hydra/launcher=slurm_gpu",
            tiny=False, hydra_cfg=True,
        )  # fmt: skip
        got = request(cfg)
        # one process per GPU; training: the trainer's devices; eval: the sharded processes
        used = cfg.trainer.devices if task != "eval" else cfg.task.devices
        assert got["tasks_per_node"] == got["gpus_per_node"] == used == 8, (task, got)
        assert got["nodes"] == 1 and got["mem_per_gpu"] == "60GB"
    smaller = compose_cfg(
        f"+experiment={table}", "task.devices=2", "hydra/launcher=slurm_gpu",
        tiny=False, hydra_cfg=True,
    )  # fmt: skip
    assert request(smaller)["gpus_per_node"] == request(smaller)["tasks_per_node"] == 2


@pytest.mark.slow
def test_a_toy_table_through_submitit_local_with_the_sharded_eval(tmp_path):
    sweep = tmp_path / "sweep"
    cmd = [
        sys.executable, "-m", "backplay_exp", "+experiment=quickstart", *TINY,
        "remask=confidence", "sampler.tokens_per_step=1,2", "task.batch_size=4",
        "task.devices=2", "hydra/launcher=local", f"hydra.sweep.dir={sweep}",
    ]  # fmt: skip
    environ = {
        **os.environ,
        "BACKPLAY_CACHE_DIR": str(tmp_path / "cache"),
        "WANDB_MODE": "disabled",
    }
    run = subprocess.run(cmd, cwd=ROOT, env=environ, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    results = [json.loads(p.read_text()) for p in sorted(sweep.glob("*/results.json"))]
    assert sorted(r["tokens_per_step"] for r in results) == [1, 2]
    assert all(r["status"] == "ok" and r["ranks"] == 2 and r["n"] == 12 for r in results)
    assert list(sweep.glob(".submitit/*"))  # the jobs went through submitit
    assert (sweep / "report.md").exists()
