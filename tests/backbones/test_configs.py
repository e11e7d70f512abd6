"""The real backbone, data and trainer options compose and resolve (nothing downloaded)."""

from __future__ import annotations

import pytest
from hydra.utils import get_class, instantiate
from omegaconf import OmegaConf

from backplay_exp.backbones.hf import HFBackbone
from backplay_exp.backbones.native.backbone import NativeBackbone

HUB_OPTIONS = {
    "llada_8b": ("GSAI-ML/LLaDA-8B-Base", 126336),
    "llada_8b_instruct": ("GSAI-ML/LLaDA-8B-Instruct", 126336),
    "dream_7b": ("Dream-org/Dream-v0-Base-7B", 151666),
    "hf_masked_lm": ("answerdotai/ModernBERT-large", None),
}
# the paper's settings (METHOD.md section 8) with their real options
PAPER = [
    ("smdm_1b", "gsm8k_aug", "ddp"),  # Table 1
    ("llada_8b", "opencodeinstruct", "fsdp"),  # Tables 2, 3, 6
    ("llada_8b", "openmathinstruct2", "fsdp"),  # Tables 4, 5, 7, 8
]


@pytest.mark.parametrize("option", sorted(HUB_OPTIONS))
def test_hub_backbone_options_compose(compose_cfg, option):
    cfg = compose_cfg(f"backbone={option}", tiny=False)
    name, mask_id = HUB_OPTIONS[option]
    native = option != "hf_masked_lm"  # LLaDA and Dream run on the in-repo transformer
    assert issubclass(get_class(cfg.backbone._target_), NativeBackbone if native else HFBackbone)
    assert native == ("trust_remote_code" not in cfg.backbone)
    assert cfg.backbone.name_or_path == name and cfg.backbone.mask_id == mask_id
    assert cfg.backbone.tap_layer == -2


@pytest.mark.parametrize(("backbone", "data", "trainer"), PAPER)
def test_paper_settings_compose_and_reach_global_batch_256(compose_cfg, backbone, data, trainer):
    for task in ("sft", "head", "joint", "eval"):
        cfg = compose_cfg(
            f"task={task}", f"backbone={backbone}", f"data={data}", f"trainer={trainer}", tiny=False
        )
        resolved = OmegaConf.to_container(cfg, resolve=True)  # every interpolation resolves
        assert resolved["data"]["seq_len"] == (256 if backbone == "smdm_1b" else 1024)
    t = cfg.trainer
    assert t.devices * t.num_nodes * cfg.data.batch_size * t.accumulate_grad_batches == 256
    assert t.precision == "bf16-mixed"


@pytest.mark.parametrize(("option", "strategy"), [("ddp", "DDPStrategy"), ("fsdp", "FSDPStrategy")])
def test_trainer_strategies_build(compose_cfg, option, strategy):
    cfg = compose_cfg(f"trainer={option}", tiny=False)
    built = instantiate(cfg.trainer.strategy)  # the Trainer itself needs GPUs
    assert type(built).__name__ == strategy


def test_fsdp_wraps_each_transformer_block(compose_cfg):
    from backplay_exp.transformer.block import Block

    policy = instantiate(compose_cfg("trainer=fsdp", tiny=False).trainer.strategy.auto_wrap_policy)
    assert policy == {Block}


def test_smdm_1b_takes_the_tiny_test_overrides(compose_cfg):
    # tests/conftest.py's TINY overrides (d_model, n_layers, n_heads) apply to smdm_1b too
    cfg = compose_cfg("backbone=smdm_1b")
    assert (cfg.backbone.d_model, cfg.backbone.n_layers, cfg.backbone.conv_kernel) == (32, 2, 0)
