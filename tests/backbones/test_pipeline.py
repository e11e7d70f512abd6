"""`task=sft` and `task=head` end to end with a Hugging Face adapter (tiny random BERT, CPU)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from backplay_exp.backbones.base import load_backbone
from backplay_exp.backbones.hf_masked_lm import MaskedLMBackbone
from backplay_exp.tasks.registry import stage_dir
from backplay_exp.tasks.runner import run_task
from tests.backbones.conftest import backbone_overrides

RUN = [
    "logger=csv",
    "+trainer.enable_progress_bar=false",
    "sft.max_steps=4",
    "sft.val_check_interval=2",
    "sft.checkpoint_every=2",
]


@pytest.fixture
def gsm8k_like(tmp_path):
    path = tmp_path / "gsm8k_aug.jsonl"
    rows = [
        {
            "question": f"{i}+{i + 1}",
            "cot": f"<<{i}+{i + 1}={2 * i + 1}>>",
            "answer": str(2 * i + 1),
        }
        for i in range(48)
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.mark.slow
def test_sft_with_hf_masked_lm_on_local_gsm8k_aug(compose_cfg, model_dirs, gsm8k_like):
    cfg = compose_cfg(
        "task=sft",
        *backbone_overrides("bert", model_dirs["bert"]),
        *RUN,
        "data=gsm8k_aug",
        "data.path=json",
        f"data.data_files={gsm8k_like}",
        "data.n_train=40",
        "data.n_val=8",
        "data.val_split=null",
        "data.seq_len=48",
        "data.batch_size=8",
        "data.num_workers=0",
        tiny=False,
    )
    metrics = run_task(cfg)
    results = json.loads((Path(cfg.paths.output_dir) / "results.json").read_text())
    assert results["task"] == "sft" and results["steps"] == 4
    assert metrics["train/loss"] > 0 and "val/loss" in metrics
    saved = stage_dir(cfg, "sft") / "backbone"
    assert (saved / "hf" / "config.json").exists() and (saved / "tokenizer").is_dir()
    loaded = load_backbone(saved)
    assert isinstance(loaded, MaskedLMBackbone) and loaded.n_layers == 3


@pytest.mark.slow
def test_head_on_a_frozen_hf_masked_lm(compose_cfg, model_dirs):
    cfg = compose_cfg(
        "task=head",
        *backbone_overrides("bert", model_dirs["bert"]),
        *RUN,
        "data.n_train=256",
        "data.n_val=32",
        "data.batch_size=16",
        "head_train.max_steps=4",
        "head_train.val_check_interval=2",
        "head_train.checkpoint_every=2",
        tiny=False,
    )
    metrics = run_task(cfg)  # trains the SFT stage first, reloads it, then the head
    assert metrics["backbone_unchanged"] is True
    assert 0 <= metrics["val/head_auroc"] <= 1 and metrics["train/bce"] > 0
    head = stage_dir(cfg, "head") / "head"
    assert (head / "head.yaml").exists()
