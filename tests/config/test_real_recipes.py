"""The real-backbone tables train at their own learning rates, not the embedded toy's.

conf/module/{sft,head_only}.yaml default to the toy's 3e-3 / 4.5e-3 (a 0.4M-parameter model from
scratch); an 8B or 1B backbone fine-tuned at that rate diverges. Every experiment on a real
backbone must set its SFT and head rates (conf/experiment/base/*.yaml) below 1e-3.
"""

from pathlib import Path

import pytest

CONF = Path(__file__).parents[2] / "conf"
TOY_BACKBONES = {"TinyBackbone"}
EXPERIMENTS = sorted(p.stem for p in (CONF / "experiment").glob("*.yaml"))


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_real_backbones_do_not_train_at_the_toys_rates(compose_cfg, name):
    cfg = compose_cfg(f"+experiment={name}", tiny=False)
    if cfg.backbone._target_.split(".")[-1] in TOY_BACKBONES:
        pytest.skip("the embedded toy: its rates are the defaults")
    rates = {
        "sft": cfg.sft.module.optimizer.lr,
        "head": cfg.head_train.module.optimizer.lr,
        "joint": cfg.joint.module.optimizer.lr,
    }
    assert all(lr < 1e-3 for lr in rates.values()), rates


def test_the_toy_keeps_its_rates(compose_cfg):
    cfg = compose_cfg("+experiment=quickstart", tiny=False)
    assert (cfg.sft.module.optimizer.lr, cfg.head_train.module.optimizer.lr) == (3e-3, 4.5e-3)
