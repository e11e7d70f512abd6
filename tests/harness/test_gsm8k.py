"""GSM8K through lm-eval, offline: the repo's local-file task on the tiny backbone end to end,
and lm-eval's exact_match against the project's scorer on fixed generations."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from backplay_exp.data.tokenizer import DEFAULT_CHARS
from backplay_exp.tasks.runner import run_task
from tests.conftest import TINY
from tests.harness.conftest import FAST, SHARED_DATA, read_run
from tests.scripts import script_module

ROOT = Path(__file__).resolve().parents[2]
CHARS = set(DEFAULT_CHARS)  # what the tiny backbone's char tokenizer encodes
# the tiny overrides minus the toy benchmark's own keys; an untrained tiny model (plumbing)
BASE = [o for o in TINY if not o.startswith("benchmark.")]
SMALL = [
    "sft.checkpoint=pretrained", "data.task=null", "benchmark.gen_length=16",
    "benchmark.block_length=8", "sampler.tokens_per_step=4", "backbone.max_len=2048",
]  # fmt: skip


def needs_data():
    if not (SHARED_DATA / "gsm8k" / "test.jsonl").exists():
        pytest.skip(f"GSM8K data not available at {SHARED_DATA}")


def ascii_copy(tmp_path: Path, n: int) -> Path:
    """The first `n` test and train problems whose text the tiny char tokenizer can encode."""
    for split in ("test", "train"):
        lines = (SHARED_DATA / "gsm8k" / f"{split}.jsonl").read_text().splitlines()
        rows = [json.loads(line) for line in lines]
        kept = [json.dumps(r) for r in rows if set(r["question"] + r["answer"]) <= CHARS][:n]
        (tmp_path / "gsm8k").mkdir(parents=True, exist_ok=True)
        (tmp_path / "gsm8k" / f"{split}.jsonl").write_text("\n".join(kept) + "\n")
    return tmp_path


def test_gsm8k_local_files_end_to_end(compose_cfg, tmp_path):
    needs_data()
    data = ascii_copy(tmp_path / "data", 3)
    cfg = compose_cfg(
        *BASE, *SMALL, *FAST, "lm_eval.tasks=[backplay_gsm8k]", "lm_eval.num_fewshot=1",
        f"lm_eval.data_dirs=[{data}]", "lm_eval.metric='exact_match,flexible-extract'",
        tiny=False,
    )  # fmt: skip
    metrics = run_task(cfg)
    results, samples = read_run(Path(cfg.paths.output_dir))
    assert results["benchmark"] == "backplay_gsm8k" and results["n"] == 3 == len(samples)
    assert results["metric"] == "exact_match,flexible-extract"
    assert results["accuracy"] == metrics["accuracy"]
    assert results["accuracy"] == results["lm_eval"]["backplay_gsm8k"][results["metric"]]
    assert results["convention"] == "lm_eval:backplay_gsm8k:1shot"
    lines = (data / "gsm8k" / "test.jsonl").read_text().splitlines()
    gold = [json.loads(line)["answer"] for line in lines]
    assert [s["answer"] for s in samples] == gold
    assert all(s["prompt"].count("Question:") == 2 for s in samples)  # one shot + the question
    assert all(s["prompt"].endswith("Answer:") for s in samples)
    assert all("Question:" not in s["completion"] for s in samples)  # cut at `until`
    assert all(1 <= s["nfe"] <= 16 for s in samples)  # a 16-token canvas at k=4, <= 4x steps


def test_exact_match_agrees_with_the_project_scorer_on_fixed_generations():
    needs_data()
    with script_module("lm_eval_gsm8k_agreement") as script:
        rows = script.compare(SHARED_DATA / "gsm8k", n_problems=60)
        counts = script.summary(rows)
    assert len(rows) >= 200  # 60 problems x the script's completion variants
    for filt in ("strict-match", "flexible-extract"):
        unexplained = [r for r in rows if r[filt] != r["project"] and r["why"][filt] is None]
        assert unexplained == [], unexplained[:3]
    # the documented disagreements occur, each for its reason, and nowhere else
    assert counts["strict-match"]["disagree"] == sum(counts["strict-match"]["why"].values())
    assert set(counts["strict-match"]["why"]) <= set(script.REASONS)
