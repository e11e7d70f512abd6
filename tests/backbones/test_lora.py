"""LoRA: only adapters train; merging gives back a plain backbone that saves and loads."""

from __future__ import annotations

import pytest
import torch
from hydra.utils import instantiate

from backplay_exp.backbones.base import load_backbone
from backplay_exp.backbones.lora import apply_lora, lora_modules, merge_lora
from tests.backbones.conftest import backbone_overrides

TINY_TARGETS = {
    "r": 4,
    "lora_alpha": 8,
    "lora_dropout": 0.0,
    "target_modules": ["q_proj", "down_proj"],
}


def perturb_adapters(backbone):
    with torch.no_grad():
        for name, p in backbone.named_parameters():
            if "lora_B" in name:
                p.normal_(std=0.5)


def test_lora_on_tiny_trains_adapters_only_and_merges(compose_cfg, tmp_path):
    cfg = compose_cfg()
    torch.manual_seed(0)
    backbone = instantiate(cfg.backbone).eval()
    keys = set(backbone.state_dict())
    tokens = torch.randint(3, 50, (2, 10))
    base = backbone(tokens).logits.detach()
    apply_lora(backbone, TINY_TARGETS)
    assert len(lora_modules(backbone)) == 2 * cfg.backbone.n_layers
    trainable = {n for n, p in backbone.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n for n in trainable)
    torch.testing.assert_close(backbone(tokens).logits, base)  # B = 0 at init: no change
    perturb_adapters(backbone)
    adapted = backbone(tokens).logits.detach()
    assert not torch.allclose(adapted, base)
    merge_lora(backbone)
    assert not lora_modules(backbone) and set(backbone.state_dict()) == keys
    torch.testing.assert_close(backbone(tokens).logits, adapted, atol=1e-5, rtol=1e-5)
    backbone.save(tmp_path / "bb", cfg.backbone)
    torch.testing.assert_close(
        load_backbone(tmp_path / "bb")(tokens).logits, adapted, atol=1e-5, rtol=1e-5
    )


def test_lora_on_an_hf_adapter_must_be_merged_before_saving(compose_cfg, model_dirs, tmp_path):
    cfg = compose_cfg(*backbone_overrides("bert", model_dirs["bert"]), tiny=False)
    backbone = instantiate(cfg.backbone).eval()
    apply_lora(backbone, {"r": 2, "target_modules": ["query", "value"]})
    perturb_adapters(backbone)
    tokens = torch.randint(3, 50, (1, 6))
    adapted = backbone(tokens).logits.detach()
    with pytest.raises(ValueError, match="merge them before saving"):
        backbone.save(tmp_path / "bb", cfg.backbone)
    merge_lora(backbone).save(tmp_path / "bb", cfg.backbone)
    loaded = load_backbone(tmp_path / "bb").eval()
    torch.testing.assert_close(loaded(tokens).logits, adapted, atol=1e-5, rtol=1e-5)


def test_unknown_target_modules_name_the_fix(compose_cfg):
    backbone = instantiate(compose_cfg().backbone)
    with pytest.raises(ValueError, match=r"target_modules=.*matched nothing"):
        apply_lora(backbone, {"r": 2, "target_modules": ["qkv"]})  # tiny's old fused name
