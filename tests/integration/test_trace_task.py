"""`task=trace` and an eval's traces end to end on the tiny config (tasks/trace.py)."""

from __future__ import annotations

import json
from pathlib import Path

from backplay_exp.samplers.trace.files import trace_pages
from backplay_exp.samplers.trace.records import read_records, read_trace
from backplay_exp.tasks.runner import run_task

SMALL_HEAD = [
    "head.d_head=16", "head.n_heads=2", "head.n_layers=1", "head.conv_kernel=5",
    "head_train.max_steps=6", "head_train.val_check_interval=3", "head_train.checkpoint_every=3",
]  # fmt: skip
# a small eval batch, so that problem 5 sits in the second one (row 1)
SETTINGS = [*SMALL_HEAD, "sampler.tokens_per_step=4", "task.batch_size=4"]
DECODERS = 'task.decoders=["remask=confidence","remask=backplay_toy"]'


def samples(cfg) -> dict[str, dict]:
    lines = (Path(cfg.paths.output_dir) / "samples.jsonl").read_text().splitlines()
    return {r["id"]: r for r in map(json.loads, lines)}


def test_trace_task_sets_decoders_side_by_side_as_eval_decodes(compose_cfg, tmp_path):
    cfg = compose_cfg("task=trace", *SETTINGS, "task.problem=5", DECODERS, hydra_cfg=True)
    metrics = run_task(cfg)
    out = Path(cfg.paths.output_dir)
    assert {p.name for p in out.iterdir()} >= {"trace.jsonl", "trace.html", "trace.png"}
    records = read_records(out / "trace.jsonl")
    traces = read_trace(records)
    assert [t.label for t in traces] == ["remask=confidence", "remask=backplay_toy"]
    assert metrics["decoders"] == 2
    conf, bp = traces
    assert (conf.header["name"], bp.header["name"]) == ("confidence", "backplay")
    assert conf.header["index"] == 5 and conf.header["problem"] == bp.header["problem"]
    assert conf.header["tokens_per_step"] == 4
    # confidence decoding at k=4 takes gen_length / k steps, one forward each, until an early stop
    assert len(conf.steps) == conf.result["nfe"] <= 32 // 4
    assert conf.result["remasks"] == 0 and all(not r.record["remasks"] for r in conf.steps)
    assert sum(len(r.record["remasks"]) for r in bp.steps) == bp.result["remasks"]
    assert any(r.record["judged"] for r in bp.steps)  # the head judged (backplay_toy: block starts)
    for t in traces:  # each step's record holds the canvas it left; the result is the response
        assert [r.nfe for r in t.steps] == list(range(1, len(t.steps) + 1))
        last = t.steps[-1].record["canvas"]
        mask, eos = t.header["mask_id"], t.header["eos_id"]
        assert t.result["tokens"] == [eos if x == mask else x for x in last]

    # the same problem in the eval of each decoder: the same decode
    for arm, trace in (("confidence", conf), ("backplay_toy", bp)):
        eval_cfg = compose_cfg("task=eval", *SETTINGS, f"remask={arm}", "task.reuse=false")
        with_eval = tmp_path / f"eval_{arm}"
        eval_cfg.paths.output_dir = str(with_eval)
        run_task(eval_cfg)
        sample = samples(eval_cfg)[trace.header["problem"]]
        assert sample["completion"] == trace.result["completion"]
        assert (sample["nfe"], sample["remasks"]) == (trace.result["nfe"], trace.result["remasks"])
        assert sample["correct"] == trace.result["correct"]


def test_trace_of_a_prompt_of_ones_own(compose_cfg):
    prompt = "3+4=?*2=?+1=?+0=?*3=?+2=?"
    cfg = compose_cfg("task=trace", *SETTINGS, f"task.prompt='{prompt}'", hydra_cfg=True)
    run_task(cfg)
    (trace,) = read_trace(read_records(Path(cfg.paths.output_dir) / "trace.jsonl"))
    assert trace.label == "confidence" and trace.header["prompt"] == prompt
    assert trace.result["correct"] is None and "problem" not in trace.header  # nothing to score
    assert len(trace.steps) == trace.result["nfe"]


def test_eval_keeps_traces_of_sampled_problems(compose_cfg):
    cfg = compose_cfg("task=eval", *SETTINGS, "remask=backplay_toy", "task.trace_samples=3")
    run_task(cfg)
    out = Path(cfg.paths.output_dir)
    pages = trace_pages(out)
    assert len(pages) == 3 and all(p.with_suffix(".jsonl").exists() for p in pages)
    by_id = samples(cfg)
    for page in pages:
        (trace,) = read_trace(read_records(page.with_suffix(".jsonl")))
        sample = by_id[trace.header["problem"]]
        assert trace.result["completion"] == sample["completion"]
        assert trace.result["nfe"] == sample["nfe"] == len(trace.steps)
        assert page.read_text().startswith("<!doctype html>")
