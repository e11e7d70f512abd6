"""Every task end to end on the native LLaDA and Dream fixture checkpoints, through hydra.compose.

One cache per model: `task=sft` (a few steps on a small local SFT file), `task=head` on the
frozen SFT model, `task=joint` with LoRA, `task=t2t`, and `task=eval` with `remask=backplay` on
a slice of the real GSM8K test set (../shared/data). Plumbing and file contracts, not accuracy.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from backplay_exp.backbones.base import load_backbone
from backplay_exp.tasks.registry import stage_dir
from backplay_exp.tasks.runner import run_task
from tests.backbones.conftest import native_overrides
from tests.benchmarks.conftest import shared_file

STEPS = [
    "logger=csv",
    "+trainer.enable_progress_bar=false",
    "seed=0",
    "sft.max_steps=3",
    "sft.val_check_interval=3",
    "sft.checkpoint_every=3",
    "head_train.max_steps=3",
    "head_train.val_check_interval=3",
    "head_train.checkpoint_every=3",
    "t2t.max_steps=3",
    "t2t.val_check_interval=3",
    "t2t.checkpoint_every=3",
]


@pytest.fixture
def sft_file(tmp_path) -> Path:
    path = tmp_path / "sft.jsonl"
    rows = [
        {
            "question": f"{i}+{i + 1}?",
            "cot": f"<<{i}+{i + 1}={2 * i + 1}>>",
            "answer": str(2 * i + 1),
        }
        for i in range(40)
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def data_overrides(path: Path) -> list[str]:
    return [
        "data=gsm8k_aug",
        "data.path=json",
        f"data.data_files='{path}'",
        "data.n_train=32",
        "data.n_val=8",
        "data.val_split=null",
        "data.seq_len=48",
        "data.batch_size=8",
        "data.num_workers=0",
    ]


def spellable_gsm8k(tokenizer, out: Path, n: int = 3) -> Path:
    """The first `n` real GSM8K test problems the fixture's char vocabulary can spell."""
    vocab = tokenizer.get_vocab()
    rows = []
    for line in shared_file("gsm8k", "test.jsonl").read_text().splitlines():
        row = json.loads(line)
        if all(ch in vocab for ch in row["question"] + row["answer"]):
            rows.append(row)
        if len(rows) == n:
            break
    out.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return out


def saved_weights(hf: Path) -> dict[str, torch.Tensor]:
    weights: dict[str, torch.Tensor] = {}
    for shard in hf.glob("*.safetensors"):
        weights |= load_file(str(shard))
    return weights


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["llada", "dream"])
def test_every_task_on_the_native_fixture(compose_cfg, kind, sft_file, tmp_path):
    base = [*native_overrides(kind), *STEPS, *data_overrides(sft_file)]

    def run(*overrides: str):
        cfg = compose_cfg(*base, *overrides, tiny=False)
        return cfg, run_task(cfg)

    cfg, metrics = run("task=sft")
    assert metrics["steps"] == 3 and metrics["train/loss"] > 0
    stage = stage_dir(cfg, "sft") / "backbone"
    # the stage is the published layout, and loads back to exactly the weights it holds
    loaded = load_backbone(stage)
    on_disk = saved_weights(stage / "hf")
    state = loaded.model.state_dict()
    assert set(on_disk) == {loaded.keymap.to_published(k) for k in state}
    assert all(torch.equal(on_disk[loaded.keymap.to_published(k)], v) for k, v in state.items())
    assert {p.dtype for p in loaded.parameters()} == {torch.float32}

    _, metrics = run("task=head")
    assert metrics["backbone_unchanged"] is True and metrics["train/bce"] > 0
    assert 0 <= metrics["val/head_auroc"] <= 1

    cfg, metrics = run("task=joint", "+lora@joint.lora=llada", "joint.max_steps=3")
    assert metrics["steps"] == 3
    joint = load_backbone(stage_dir(cfg, "joint") / "backbone")
    assert not any("lora_" in n for n in joint.state_dict())  # merged before saving

    _, metrics = run("task=t2t", "artifact=draft")
    assert metrics["steps"] == 3

    gsm8k = spellable_gsm8k(loaded.tokenizer, tmp_path / "gsm8k_slice.jsonl")
    cfg, metrics = run(
        "task=eval",
        "remask=backplay",
        "model=head",
        "benchmark=gsm8k",
        f"benchmark.path='{gsm8k}'",
        "benchmark.limit=3",
        "benchmark.gen_length=16",
        "benchmark.block_length=8",
        "sampler.tokens_per_step=2",
    )
    out = Path(cfg.paths.output_dir)
    results = json.loads((out / "results.json").read_text())
    samples = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    assert results["n"] == 3 and results["remask"] == "backplay" and results["model"] == "head"
    assert len(samples) == 3 and all(s["nfe"] >= 4 for s in samples)  # >= 1 block of 8, 2 a step
