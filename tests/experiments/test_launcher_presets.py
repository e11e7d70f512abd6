"""SLURM requests sized to the job: composed launcher configs, and the sharded eval via submitit."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from backplay_exp.tasks.registry import stage_dir, stage_trainer
from backplay_exp.tasks.results import job_signature
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
        # one process per GPU; training: the stage's trainer's devices; eval: the sharded
        # processes
        trainer = stage_trainer(cfg, cfg.head_train) if task == "head" else cfg.trainer
        used = trainer.devices if task != "eval" else cfg.task.devices
        assert got["tasks_per_node"] == got["gpus_per_node"] == used == 8, (task, got)
        assert got["nodes"] == 1 and got["mem_per_gpu"] == "60GB"
    smaller = compose_cfg(
        f"+experiment={table}", "task.devices=2", "hydra/launcher=slurm_gpu",
        tiny=False, hydra_cfg=True,
    )  # fmt: skip
    assert request(smaller)["gpus_per_node"] == request(smaller)["tasks_per_node"] == 2
    fewer = compose_cfg(f"+experiment={table}", "eval_devices=4", tiny=False)
    assert fewer.task.devices == 4
    # how many processes decode is not what they compute: the same eval job
    assert job_signature(fewer) == job_signature(compose_cfg(f"+experiment={table}", tiny=False))


@pytest.mark.parametrize("table", [t for t in TABLES if not t.startswith("table1")])
def test_llada_heads_train_on_ddp_beside_an_fsdp_sft(compose_cfg, table):
    def composed(*overrides):
        return compose_cfg(
            f"+experiment={table}", "hydra/launcher=slurm_gpu", *overrides,
            tiny=False, hydra_cfg=True,
        )  # fmt: skip

    head = composed("task=head")
    assert "FSDPStrategy" in head.trainer.strategy._target_  # SFT's
    trainer = stage_trainer(head, head.head_train)
    assert "DDPStrategy" in trainer.strategy._target_
    # the paper's global batch 256: GPUs x per-GPU batch x accumulation
    assert trainer.devices * head.data.batch_size * trainer.accumulate_grad_batches == 256
    one = composed("task=head", "head_train.trainer.devices=1")
    assert request(one)["gpus_per_node"] == request(one)["tasks_per_node"] == 1
    # how many GPUs train the head is not what the head is: the same cached stage
    assert stage_dir(one, "head") == stage_dir(head, "head")
    assert stage_dir(composed("task=head", "head_train.trainer.precision=32"), "head") != (
        stage_dir(head, "head")
    )


def test_without_a_stage_trainer_the_head_uses_the_runs(compose_cfg):
    cfg = compose_cfg("+experiment=quickstart", "task=head")
    assert cfg.head_train.get("trainer") is None
    assert stage_trainer(cfg, cfg.head_train) is cfg.trainer
    assert cfg.task.devices == cfg.trainer.devices


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
