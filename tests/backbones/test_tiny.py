"""The tiny backbone's tapped hidden state, alone (what head training reads) or with logits."""

import pytest
import torch

from backplay_exp.backbones.tiny import TinyBackbone
from tests.fakes import small_tiny


def tiny(tap_layer: int) -> TinyBackbone:
    return small_tiny(0, n_layers=3, tap_layer=tap_layer)


@pytest.mark.parametrize("tap_layer", [-4, -2, -1, 0, 1, 3])
def test_hidden_states_equal_the_forward_tap(tap_layer):
    backbone = tiny(tap_layer)
    tokens = torch.randint(0, len(backbone.tokenizer), (2, 10))
    keep = torch.ones_like(tokens, dtype=torch.bool)
    keep[1, :3] = False  # left padding
    with torch.no_grad():
        full = backbone(tokens, keep).hidden
        alone = backbone.hidden_states(tokens, keep)
    assert torch.equal(full, alone)


def test_hidden_states_skip_the_blocks_after_the_tap_and_the_lm_head():
    backbone = tiny(-2)  # block 2 of 3
    calls = []
    for name in ("model.blocks.0", "model.blocks.1", "model.blocks.2", "model.lm_head"):
        backbone.get_submodule(name).register_forward_hook(lambda *_, n=name: calls.append(n))
    with torch.no_grad():
        backbone.hidden_states(torch.zeros(1, 5, dtype=torch.long))
    assert calls == ["model.blocks.0", "model.blocks.1"]
    calls.clear()
    with torch.no_grad():
        backbone(torch.zeros(1, 5, dtype=torch.long))
    assert calls == ["model.blocks.0", "model.blocks.1", "model.blocks.2", "model.lm_head"]
