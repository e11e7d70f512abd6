"""The toy through lm-eval decodes exactly what task=eval decodes: same problems, same batches,
same seeds, same decoder (confidence and BackPlay at k = 2, 4; a short SFT + head recipe).

The same comparison on the quickstart's trained stages: scripts/lm_eval_toy_parity.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from backplay_exp.tasks.runner import run_task
from tests.harness.conftest import FAST, read_run

# a head just good enough to remask something (tests/integration's small head)
SMALL_HEAD = [
    "head.d_head=16", "head.n_heads=2", "head.n_layers=1", "head.conv_kernel=5",
    "head_train.max_steps=6", "head_train.val_check_interval=3", "head_train.checkpoint_every=3",
]  # fmt: skip


# confidence: 12 problems in batches of 5, 5, 2 (batch seeds and composition must line up);
# BackPlay with its barely trained head remasks a lot: 6 problems in batches of 3, and a block
# stops at 2x its plain steps (both runs alike)
SETTINGS = {
    "confidence": (["benchmark.n_problems=12"], 5),
    "backplay_toy": (["benchmark.n_problems=6", "sampler.stop.max_steps_factor=2"], 3),
}


@pytest.mark.parametrize("k", [2, 4])
@pytest.mark.parametrize("remask", list(SETTINGS))
def test_toy_through_lm_eval_is_task_eval(compose_cfg, tmp_path, stage_cache, remask, k):
    extra, batch = SETTINGS[remask]
    common = [*SMALL_HEAD, f"remask={remask}", f"sampler.tokens_per_step={k}", *extra]
    direct = compose_cfg("task=eval", *common, f"task.batch_size={batch}", "task.reuse=false")
    harness = compose_cfg(*FAST, *common, f"lm_eval.batch_size={batch}")
    harness.paths.output_dir = str(tmp_path / "lm_eval")
    for cfg in (direct, harness):
        cfg.paths.cache_dir = str(stage_cache)
        run_task(cfg)
    (r1, s1), (r2, s2) = read_run(Path(direct.paths.output_dir)), read_run(tmp_path / "lm_eval")
    assert r2["task"] == "lm_eval" and r2["benchmark"] == "backplay_toy"
    assert r2["metric"] == "exact_match,answer"
    assert len(s1) == len(s2) == direct.benchmark.n_problems
    assert [s["prompt"] for s in s2] == [s["prompt"] for s in s1]
    assert [s["completion"] for s in s2] == [s["completion"] for s in s1]
    assert [s["correct"] for s in s2] == [s["correct"] for s in s1]
    assert [(s["nfe"], s["remasks"]) for s in s2] == [(s["nfe"], s["remasks"]) for s in s1]
    for key in ("n", "accuracy", "nfe_mean", "remasks_mean", "remask", "tokens_per_step"):
        assert r2[key] == r1[key], key
    assert r2["model"] == r1["model"] and r2.get("head_source") == r1.get("head_source")
    if remask == "backplay_toy":  # the head was read and acted on, in both
        assert r1["model"] == "head" and r1["remasks_mean"] > 0
