"""A multiple-choice task (the toy's, a local YAML) through loglikelihood on the tiny backbone."""

from __future__ import annotations

from pathlib import Path

from backplay_exp.tasks.runner import run_task
from tests.harness.conftest import FAST, read_run


def test_toy_multiple_choice_runs_through_the_monte_carlo_likelihood(compose_cfg):
    cfg = compose_cfg(
        *FAST, "lm_eval.tasks=[backplay_toy_mc]", "lm_eval.limit=4", "lm_eval.mc_num=4",
        "lm_eval.mc_rows_per_pass=10", "sft.checkpoint=pretrained",
    )  # fmt: skip
    metrics = run_task(cfg)
    results, samples = read_run(Path(cfg.paths.output_dir))
    assert results["benchmark"] == "backplay_toy_mc" and results["metric"] == "acc,none"
    assert results["n"] == 4 == len(samples)
    assert results["accuracy"] == metrics["accuracy"] == sum(s["correct"] for s in samples) / 4
    modulus = cfg.benchmark.task.modulus
    for sample in samples:
        assert sample["completion"] is None and len(sample["loglikelihoods"]) == modulus
        assert all(ll < 0 for ll in sample["loglikelihoods"])
        assert sample["nfe"] == modulus * 4  # mc_num forward rows per choice
        best = max(range(modulus), key=sample["loglikelihoods"].__getitem__)
        assert sample["correct"] == (best == int(sample["answer"]))
