"""`task=eval benchmark=<real benchmark> benchmark.path=<fixture> backbone=tiny` end to end.

The tiny backbone is used untrained (`sft.checkpoint=pretrained`): these tests check the
plumbing (problems -> prompts -> decoding -> cut -> scorer -> samples.jsonl / results.json),
not accuracy. `data.task=null`: the toy SFT data interpolates `${benchmark.task}`, which only
the toy benchmark has, and nothing here trains on it.
"""

from __future__ import annotations

import json
from pathlib import Path

from backplay_exp.tasks.runner import run_task
from tests.conftest import TINY

# the shared tiny overrides, minus the toy benchmark's own keys
BASE = [o for o in TINY if not o.startswith("benchmark.")]
SMALL = [
    "task=eval",
    "sft.checkpoint=pretrained",
    "data.task=null",
    "benchmark.gen_length=16",
    "benchmark.block_length=8",
    "sampler.tokens_per_step=4",
]


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def read_run(cfg) -> tuple[dict, list[dict]]:
    out = Path(cfg.paths.output_dir)
    results = json.loads((out / "results.json").read_text())
    samples = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    return results, samples


def test_eval_gsm8k_from_a_local_file(compose_cfg, tmp_path):
    rows = [{"question": f"{i}+{i}=?", "answer": f"#### {2 * i}"} for i in range(3)]
    path = write_jsonl(tmp_path / "gsm8k.jsonl", rows)
    cfg = compose_cfg(
        *BASE, *SMALL, "benchmark=gsm8k", f"benchmark.path='{path}'",
        f"benchmark.cache_dir='{tmp_path / 'hf'}'", tiny=False,
    )  # fmt: skip
    metrics = run_task(cfg)
    results, samples = read_run(cfg)
    assert results["benchmark"] == "gsm8k" and results["n"] == 3
    assert results["accuracy"] == metrics["accuracy"]
    assert [s["id"] for s in samples] == ["gsm8k/test/0", "gsm8k/test/1", "gsm8k/test/2"]
    assert samples[1]["prompt"] == "Question: 1+1=?\nAnswer:"
    assert samples[1]["answer"] == "2"
    assert all(s["detail"] in ("strict", "flexible", "no number") for s in samples)
    assert all("Question:" not in s["completion"] for s in samples)  # cut at the stop string


def test_eval_mbpp_keeps_the_sandbox_verdict(compose_cfg, tmp_path):
    rows = [
        {"task_id": i, "text": "Return one.", "code": "def one():\n    return 1",
         "test_list": ["assert one() == 1"] * 3, "test_setup_code": "", "challenge_test_list": []}
        for i in (11, 12)
    ]  # fmt: skip
    path = write_jsonl(tmp_path / "mbpp.jsonl", rows)
    cfg = compose_cfg(
        *BASE, *SMALL, "benchmark=mbpp", f"benchmark.path='{path}'",
        f"benchmark.cache_dir='{tmp_path / 'hf'}'", "benchmark.sandbox.workers=2",
        "backbone.max_len=256", tiny=False,
    )  # fmt: skip
    run_task(cfg)
    results, samples = read_run(cfg)
    assert results["benchmark"] == "mbpp" and results["n"] == 2
    assert [s["id"] for s in samples] == ["mbpp/11", "mbpp/12"]
    # an untrained model writes no valid function: the sandbox says why, in samples.jsonl
    for sample in samples:
        assert not sample["correct"]
        assert sample["detail"].split(":")[0] in ("failed", "crashed", "timed_out")
        assert len(sample["detail"]) > len("failed: ")
