"""SFT -> eval end to end on the tiny config, through the real config tree."""

import json

import pytest
from omegaconf import OmegaConf

from backplay_exp.tasks import eval as eval_task
from backplay_exp.tasks import train
from backplay_exp.tasks.registry import stage_dir
from backplay_exp.tasks.runner import run_task

RESULT_KEYS = {
    "benchmark",
    "backbone",
    "task",
    "artifact",
    "remask",
    "tokens_per_step",
    "n",
    "accuracy",
    "nfe_mean",
    "remasks_mean",
    "wall_s",
    "tokens_per_s",
    "seed",
    "config_signature",
}
SAMPLE_KEYS = {"id", "prompt", "completion", "answer", "correct", "nfe", "remasks"}
TIMINGS = {"wall_s", "tokens_per_s"}


def read(cfg):
    out = __import__("pathlib").Path(cfg.paths.output_dir)
    results = json.loads((out / "results.json").read_text())
    samples = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    return results, samples


def test_eval_trains_sft_stage_then_writes_contract_files(compose_cfg):
    cfg = compose_cfg("task=eval", "sampler.tokens_per_step=2")
    metrics = run_task(cfg)
    results, samples = read(cfg)
    assert results.keys() >= RESULT_KEYS
    assert results["n"] == 12 == len(samples)
    assert results["tokens_per_step"] == 2
    assert results["accuracy"] == metrics["accuracy"]
    assert results["accuracy"] == sum(s["correct"] for s in samples) / 12
    assert results["nfe_mean"] == sum(s["nfe"] for s in samples) / 12
    assert all(s.keys() >= SAMPLE_KEYS for s in samples)
    # k=2 with gen_length 32: at most 16 forward passes, fewer after an early stop
    assert all(1 <= s["nfe"] <= 16 for s in samples)
    stage = stage_dir(cfg, "sft")
    assert (stage / "done.json").exists()
    assert (stage / "backbone" / "tokenizer").is_dir()  # tokenizer saved with the checkpoint
    assert results["model_source"] == f"sft/{stage.name}"
    spec = OmegaConf.load(stage / "stage.yaml")  # a cached stage says what produced it
    assert spec.backbone.d_model == cfg.backbone.d_model and spec.sft.max_steps == cfg.sft.max_steps


def test_second_job_reuses_the_cached_stage(compose_cfg, monkeypatch):
    cfg = compose_cfg("task=eval")
    run_task(cfg)

    def no_training(*args, **kwargs):
        raise AssertionError("the cached SFT stage was retrained")

    monkeypatch.setattr(train, "train_sft", no_training)
    cfg2 = compose_cfg("task=eval", "sampler.tokens_per_step=3")
    run_task(cfg2)
    assert read(cfg2)[0]["tokens_per_step"] == 3


def test_same_seed_same_results_from_scratch(compose_cfg, tmp_path):
    runs = []
    for name in ("a", "b"):
        cfg = compose_cfg("task=eval")
        cfg.paths.output_dir = str(tmp_path / name / "out")
        cfg.paths.cache_dir = str(tmp_path / name / "cache")  # retrain from scratch
        run_task(cfg)
        results, samples = read(cfg)
        runs.append(
            (
                {k: v for k, v in results.items() if k not in TIMINGS},
                [{k: v for k, v in s.items() if k != "wall_s"} for s in samples],
            )
        )
    assert runs[0] == runs[1]


def test_eval_resumes_without_losing_or_duplicating(compose_cfg):
    cfg = compose_cfg("task=eval", "task.batch_size=4", "task.reuse=false")
    run_task(cfg)
    full, samples = read(cfg)
    out = __import__("pathlib").Path(cfg.paths.output_dir)
    lines = (out / "samples.jsonl").read_text().splitlines()
    # as if killed mid-way: 5 complete records and a torn sixth line
    (out / "samples.jsonl").write_text("\n".join(lines[:5]) + "\n" + lines[5][:20])
    (out / "results.json").unlink()
    run_task(cfg)
    resumed, samples2 = read(cfg)
    assert [s["id"] for s in samples2] == [s["id"] for s in samples]
    assert {k: v for k, v in resumed.items() if k not in TIMINGS} == {
        k: v for k, v in full.items() if k not in TIMINGS
    }


def test_resume_drops_samples_of_another_config(compose_cfg):
    run_task(compose_cfg("task=eval", "sampler.tokens_per_step=1"))
    cfg = compose_cfg("task=eval", "sampler.tokens_per_step=4")  # same run dir, new settings
    run_task(cfg)
    results, samples = read(cfg)
    assert len(samples) == 12
    assert {s["config_signature"] for s in samples} == {results["config_signature"]}
    assert results["nfe_mean"] <= 32 / 4  # k=4 everywhere, no k=1 record kept


def test_identical_job_reuses_finished_results(compose_cfg, monkeypatch, tmp_path):
    cfg = compose_cfg("task=eval")
    first = run_task(cfg)

    def no_decoding(*args, **kwargs):
        raise AssertionError("an identical finished job was decoded again")

    monkeypatch.setattr(eval_task, "decode_batch", no_decoding)
    cfg.paths.output_dir = str(tmp_path / "second_run")
    assert run_task(cfg) == read(cfg)[0] and read(cfg)[0]["accuracy"] == first["accuracy"]
    assert len(read(cfg)[1]) == 12
    with pytest.raises(AssertionError, match="decoded again"):  # not for another config
        run_task(compose_cfg("task=eval", "sampler.tokens_per_step=2"))


def test_task_sft_records_its_stage(compose_cfg):
    cfg = compose_cfg("task=sft")
    metrics = run_task(cfg)
    results = json.loads(
        (__import__("pathlib").Path(cfg.paths.output_dir) / "results.json").read_text()
    )
    assert results["task"] == "sft"
    assert results["steps"] == 12
    assert metrics["train/loss"] > 0


def test_missing_checkpoint_is_a_clear_error(compose_cfg):
    cfg = compose_cfg("task=eval", "sft.checkpoint=/no/such/dir")
    with pytest.raises(FileNotFoundError, match=r"/no/such/dir.*not a saved backbone"):
        run_task(cfg)


def test_tokens_per_step_above_block_length_is_a_clear_error(compose_cfg):
    cfg = compose_cfg("task=eval", "sampler.tokens_per_step=9", "benchmark.block_length=8")
    with pytest.raises(Exception, match="tokens_per_step=9 exceeds block_length=8"):
        eval_task.run(cfg, batch_size=4)


def test_failed_job_in_a_sweep_records_failure(compose_cfg):
    cfg = compose_cfg("task=eval", "sft.checkpoint=/no/such/dir", "fail_fast=false")
    metrics = run_task(cfg)
    results = json.loads(
        (__import__("pathlib").Path(cfg.paths.output_dir) / "results.json").read_text()
    )
    assert results["status"] == "failed"
    assert "not a saved backbone" in results["error"]
    assert metrics["accuracy"] != metrics["accuracy"]  # NaN
