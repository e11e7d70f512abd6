"""Head-only, joint and T2T training end to end on the tiny config, then decoding with them."""

import json
from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from backplay_exp.backbones.base import load_backbone
from backplay_exp.tasks import train
from backplay_exp.tasks.registry import stage_dir
from backplay_exp.tasks.runner import run_task

SMALL_HEAD = [
    "head.d_head=16", "head.n_heads=2", "head.n_layers=1", "head.conv_kernel=5",
    "head_train.max_steps=6", "head_train.val_check_interval=3", "head_train.checkpoint_every=3",
]  # fmt: skip
SHORT = ["joint.max_steps=6", "t2t.max_steps=6", "t2t.val_check_interval=3"]


def results(cfg):
    return json.loads((Path(cfg.paths.output_dir) / "results.json").read_text())


def correction_module(cfg, joint):
    backbone = instantiate(cfg.backbone)
    head = instantiate(cfg.head, d_in=backbone.hidden_size)
    recipe = cfg.joint if joint else cfg.head_train
    module = instantiate(
        recipe.module, backbone=backbone, head=head, artifact=instantiate(cfg.artifact)
    )
    return module, backbone, head


def optimised(module):
    return {id(p) for group in module.configure_optimizers()["optimizer"].param_groups
            for p in group["params"]}  # fmt: skip


def test_head_only_optimiser_holds_only_the_head(compose_cfg):
    cfg = compose_cfg(*SMALL_HEAD)
    module, backbone, head = correction_module(cfg, joint=False)
    module.trainer = type("T", (), {"estimated_stepping_batches": 10})()
    held = optimised(module)
    assert held == {id(p) for p in head.parameters()}
    assert not any(p.requires_grad for p in backbone.parameters())
    # the joint module trains both, even on a backbone a head module froze before
    joint, _, _ = correction_module(cfg, joint=True)
    joint.trainer = module.trainer
    assert {id(p) for p in joint.backbone.parameters()} <= optimised(joint)


def test_a_head_step_runs_the_lm_head_once_and_the_last_block_only_for_the_artifact(compose_cfg):
    cfg = compose_cfg(*SMALL_HEAD)  # the test backbone: 2 blocks, the head reads block 1
    module, backbone, _ = correction_module(cfg, joint=False)
    module.log = lambda *a, **k: None
    calls = []
    for name in ("blocks.0", "blocks.1", "lm_head"):
        module_ = backbone.model.get_submodule(name)
        module_.register_forward_hook(lambda *_, n=name: calls.append(n))
    batch = {
        "input_ids": torch.randint(0, backbone.mask_id, (2, 12)),
        "response_mask": torch.arange(12).expand(2, 12) >= 4,
    }
    module.training_step(batch, 0).backward()
    # the artifact's prediction needs the logits; the head's input stops at the tapped block
    assert calls == ["blocks.0", "blocks.1", "lm_head", "blocks.0"]


def test_head_training_leaves_the_frozen_backbone_unchanged(compose_cfg):
    cfg = compose_cfg("task=head", *SMALL_HEAD)
    metrics = run_task(cfg)
    assert metrics["backbone_unchanged"] is True
    assert 0 <= metrics["val/head_auroc"] <= 1 and metrics["train/bce"] > 0
    eval_cfg = compose_cfg("remask=backplay_toy", *SMALL_HEAD)
    run_task(eval_cfg)  # decodes with the cached SFT backbone + head
    r = results(eval_cfg)
    assert r["model"] == "head" and r["remask"] == "backplay"
    assert r["head_source"] == f"head/{stage_dir(cfg, 'head').name}"


def test_joint_trains_and_decodes(compose_cfg):
    cfg = compose_cfg("task=joint", *SMALL_HEAD, *SHORT)
    metrics = run_task(cfg)
    assert metrics["train/sft_loss"] > 0 and metrics["train/bce"] > 0
    stage = stage_dir(cfg, "joint")
    assert (stage / "backbone").is_dir() and (stage / "head").is_dir()
    eval_cfg = compose_cfg("model=joint", "remask=backplay_toy", *SMALL_HEAD, *SHORT)
    run_task(eval_cfg)
    assert results(eval_cfg)["model"] == "joint"


def test_joint_with_lora_trains_only_the_adapters(compose_cfg):
    cfg = compose_cfg("task=joint", "+lora@joint.lora=tiny", *SMALL_HEAD, *SHORT)
    backbone = instantiate(cfg.backbone)
    train.with_lora(backbone, cfg.joint)
    head = instantiate(cfg.head, d_in=backbone.hidden_size)
    module = instantiate(
        cfg.joint.module, backbone=backbone, head=head, artifact=instantiate(cfg.artifact)
    )
    trainable = {n for n, p in module.backbone.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n for n in trainable)
    run_task(cfg)
    loaded = load_backbone(stage_dir(cfg, "joint") / "backbone")  # merged: plain keys
    assert not any("lora_" in n for n, _ in loaded.named_parameters())


@pytest.mark.parametrize("artifact", ["draft", "random_vocab"])
def test_t2t_editor_trains_and_decodes_with_edits(compose_cfg, artifact):
    cfg = compose_cfg("task=t2t", f"artifact={artifact}", *SHORT)
    metrics = run_task(cfg)
    assert metrics["train/edit_ce"] > 0 and 0 <= metrics["val/edit_fix_rate"] <= 1
    r = results(cfg)
    assert r["task"] == "t2t" and r["artifact"] == artifact
    stage = stage_dir(cfg, "t2t")
    assert OmegaConf.load(stage / "stage.yaml").sft.startswith("sft/")
    eval_cfg = compose_cfg(
        "model=t2t", f"artifact={artifact}", "remask=t2t_s", "sampler.tokens_per_step=2", *SHORT
    )
    run_task(eval_cfg)
    r = results(eval_cfg)
    assert r["model"] == "t2t" and r["model_source"] == f"t2t/{stage.name}"
    assert r["remask"] == "t2t_edit(S)"
    # toy problems carry reference responses: fixed / broke are counted
    assert r["edit_intensity"] >= 0 and r["edits_fixed_mean"] is not None
    samples = [
        json.loads(line)
        for line in (Path(eval_cfg.paths.output_dir) / "samples.jsonl").read_text().splitlines()
    ]
    assert sum(s["edits"] for s in samples) / len(samples) == pytest.approx(r["edits_mean"])
    assert all(s["edits_fixed"] + s["edits_broke"] <= s["edits"] for s in samples)


def test_t2t_with_lora_changes_only_through_the_adapters(compose_cfg):
    cfg = compose_cfg("task=t2t", "artifact=draft", "+lora@t2t.lora=tiny", *SHORT)
    run_task(cfg)
    sft = load_backbone(stage_dir(cfg, "sft") / "backbone")
    editor = load_backbone(stage_dir(cfg, "t2t") / "backbone")
    changed = {n for n, p in editor.state_dict().items() if not torch.equal(p, sft.state_dict()[n])}
    # merged LoRA: only the adapted linear layers moved; embeddings and norms did not
    assert changed and all(n.split(".")[-2] in {"q_proj", "k_proj", "v_proj", "o_proj",
                                                  "gate_proj", "up_proj", "down_proj"}
                           for n in changed)  # fmt: skip


def test_t2t_model_has_no_head(compose_cfg):
    cfg = compose_cfg("model=t2t", "remask=backplay_toy")
    with pytest.raises(ValueError, match="model=t2t has no correction head"):
        run_task(cfg)
