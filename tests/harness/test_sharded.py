"""task=lm_eval on 2 gloo processes (lm-eval's rank sharding): the files 1 process writes."""

from __future__ import annotations

from pathlib import Path

import pytest

from backplay_exp.tasks.runner import run_task
from tests.harness.conftest import FAST, read_run

pytestmark = pytest.mark.slow  # two spawned processes import torch, Lightning and lm-eval


def test_two_ranks_write_what_one_writes(compose_cfg, tmp_path, stage_cache):
    # confidence at temperature 0 draws nothing: a document decodes the same in any batch
    one = compose_cfg(*FAST, "sampler.tokens_per_step=4", "lm_eval.limit=4")
    two = compose_cfg(*FAST, "sampler.tokens_per_step=4", "lm_eval.limit=4", "task.devices=2")
    two.paths.output_dir = str(tmp_path / "two")
    for cfg in (one, two):  # the first trains the SFT stage (if no test did) that the ranks load
        cfg.paths.cache_dir = str(stage_cache)
        run_task(cfg)
    (r1, s1), (r2, s2) = read_run(Path(one.paths.output_dir)), read_run(tmp_path / "two")
    assert (r1["ranks"], r2["ranks"]) == (1, 2)
    for key in ("n", "accuracy", "nfe_mean", "remasks_mean", "config_signature"):
        assert r1[key] == r2[key], key
    keep = ("id", "prompt", "completion", "correct", "nfe", "remasks")
    assert [{k: s[k] for k in keep} for s in s2] == [{k: s[k] for k in keep} for s in s1]
