"""Every paper experiment: composes with the paper's knobs, and runs end to end on tiny/toy."""

import itertools
import json
from pathlib import Path

import pytest
from omegaconf import open_dict

from backplay_exp.report.table import write_report
from backplay_exp.tasks.runner import run_task

CONF = Path(__file__).parents[2] / "conf"
EXPERIMENTS = sorted(p.stem for p in (CONF / "experiment").glob("*.yaml"))
# the BackPlay paper's tables (the embedded quickstart and the T2T comparison default to tiny/toy)
EMBEDDED = ("quickstart", "t2t_draft_vs_random", "fast_decoding")
PAPER = [e for e in EXPERIMENTS if e not in EMBEDDED and not e.startswith("toy_")]
# a paper experiment pointed at the embedded backbone and benchmark (README "On a laptop")
LAPTOP = [
    "backbone=tiny", "data=toy", "benchmark=toy", "trainer=cpu", "~trainer@head_train.trainer",
    "benchmark.chat_template=false", "benchmark.gen_length=32", "benchmark.block_length=16",
    "head.d_head=16", "head.n_heads=2", "head.n_layers=1", "head.conv_kernel=5",
    "head_train.max_steps=8", "head_train.val_check_interval=4", "head_train.checkpoint_every=4",
    "t2t.max_steps=8", "t2t.val_check_interval=4", "t2t.checkpoint_every=4",
    "task.batch_size=12", "eval_devices=1",
]  # fmt: skip


def sweep_jobs(cfg):
    """The override lists of a sweep's jobs (the basic sweeper's cartesian product); of a
    sweep over training seeds, the first seed's (the others run the same path)."""
    params = dict(cfg.hydra.sweeper.params)
    if "seed" in params:
        params["seed"] = str(params["seed"]).split(",")[0]
    axes = [[f"{k}={v}" for v in str(vals).split(",")] for k, vals in params.items()]
    return [list(job) for job in itertools.product(*axes)]


@pytest.mark.parametrize("name", PAPER)
def test_paper_experiment_has_the_paper_knobs(compose_cfg, name):
    cfg = compose_cfg(f"+experiment={name}", "remask=backplay", tiny=False, hydra_cfg=True)
    assert cfg.hydra.mode.name == "MULTIRUN" and cfg.hydra.sweeper.params
    assert cfg.benchmark.block_length == 32
    assert cfg.benchmark.gen_length == (256 if name.startswith("table1") else 1024)
    r = cfg.remask
    assert (r.threshold, r.max_remask, r.stride, r.block_buffer) == (0.75, 2, 4, 4)
    assert cfg.backbone._target_.split(".")[-1] in {"LLaDABackbone", "SMDMBackbone"}
    assert cfg.trainer.precision == "bf16-mixed"


@pytest.mark.slow
@pytest.mark.parametrize("name", EXPERIMENTS)
def test_experiment_runs_end_to_end_on_tiny_toy(compose_cfg, tmp_path, name):
    base = compose_cfg(f"+experiment={name}", *LAPTOP, hydra_cfg=True)
    jobs = sweep_jobs(base)
    assert len(jobs) >= 4
    for i, job in enumerate(jobs):
        cfg = compose_cfg(f"+experiment={name}", *LAPTOP, *job)
        with open_dict(cfg):
            cfg.paths.output_dir = str(tmp_path / "sweep" / str(i))
            cfg.paths.cache_dir = str(tmp_path / "cache")
        run_task(cfg)
    results = [json.loads(p.read_text()) for p in (tmp_path / "sweep").rglob("results.json")]
    assert len(results) == len(jobs) and all(r["status"] == "ok" for r in results)
    assert "k=" in write_report(tmp_path / "sweep")
    assert (tmp_path / "sweep" / "pareto.png").exists()


def test_t2t_experiment_composes_with_a_real_backbone_and_lora(compose_cfg):
    cfg = compose_cfg(
        "+experiment=t2t_draft_vs_random", "backbone=llada_8b", "data=gsm8k_aug", "benchmark=gsm8k",
        "sft.checkpoint=pretrained", "+lora@t2t.lora=llada", "trainer=gpu",
        tiny=False, hydra_cfg=True,
    )  # fmt: skip
    assert cfg.hydra.sweeper.params == {
        "artifact": "random_vocab,draft",
        "remask": "t2t_s,t2t_q,confidence",
    }
    assert cfg.model == "t2t" and cfg.t2t.lora.r == 16
    assert cfg.backbone._target_.endswith("LLaDABackbone")
