"""Cached and threshold-parallel decoding through the real config tree, and its report label."""

import json
from pathlib import Path

import pytest

from backplay_exp.report.jobs import method_label
from backplay_exp.tasks.runner import run_task


@pytest.mark.slow
def test_eval_records_how_it_decoded(compose_cfg):
    for sampler, cache, label in [
        ("fixed_k", "none", "SFT + confidence"),
        ("fixed_k", "prefix", "SFT + confidence (prefix cache)"),
        ("threshold", "dual", "SFT + confidence (threshold 0.9, dual cache)"),
    ]:  # one stage cache: the SFT model is trained once
        cfg = compose_cfg(
            "task=eval", f"sampler={sampler}", f"sampler/cache={cache}", "sampler.tokens_per_step=2"
        )
        run_task(cfg)
        results = json.loads((Path(cfg.paths.output_dir) / "results.json").read_text())
        assert results["cache"] == cache and results["tokens_per_step"] == 2
        assert results["schedule"] == sampler
        assert results["commit_threshold"] == (0.9 if sampler == "threshold" else None)
        assert method_label(results) == label


@pytest.mark.slow
def test_backplay_with_threshold_and_prefix_cache_runs(compose_cfg):
    cfg = compose_cfg(
        "task=eval",
        "remask=backplay_toy",
        "sampler=threshold",
        "sampler/cache=prefix",
        "sampler.cache.refresh_on_judge=true",
        "head_train.max_steps=4",
        "head_train.val_check_interval=2",
        "head_train.checkpoint_every=2",
    )
    metrics = run_task(cfg)
    assert 0 <= metrics["accuracy"] <= 1 and metrics["nfe_mean"] >= 1
    results = json.loads((Path(cfg.paths.output_dir) / "results.json").read_text())
    assert (results["cache"], results["cache_refresh"]) == ("prefix", "judge")
