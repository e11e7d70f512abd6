"""Dream's next-token logits realigned to positions, on cases worked out by hand."""

from __future__ import annotations

import torch

from backplay_exp.backbones.dream import DreamBackbone, shift_to_positions
from backplay_exp.data.tokenizer import EOS
from tests.backbones.conftest import save_standin


def test_shift_by_hand():
    # raw[:, i] is about token i+1; rows of 2 features so the copy at position 0 is visible
    raw = torch.tensor([[[10.0, 11.0], [20.0, 21.0], [30.0, 31.0], [40.0, 41.0]]])
    aligned = shift_to_positions(raw)
    # position 0 copies raw[0] (Dream's reference), then each position takes the one before
    assert aligned.tolist() == [[[10.0, 11.0], [10.0, 11.0], [20.0, 21.0], [30.0, 31.0]]]
    assert raw.tolist()[0][3] == [40.0, 41.0]  # input untouched; raw[-1] (about token L) dropped


def test_oracle_dream_recovers_its_input(tmp_path):
    # the stand-in's raw logits are 10 * one_hot(next token): for tokens [5, 7, 2, 9] the raw
    # argmax is [7, 2, 9, 5] (the last wraps to token 0). Aligned by hand: position 0 copies
    # raw[0] -> 7; positions 1..3 take raw[0..2] -> 7, 2, 9, i.e. exactly the input tokens.
    path = save_standin(tmp_path / "oracle", "dream", next_token_oracle=True)
    backbone = DreamBackbone(
        shift_hidden=True,
        name_or_path=str(path),
        dtype="float32",
        tap_layer=-2,
        trust_remote_code=True,
        mask_id=2,
        eos_token=EOS,
    )
    tokens = torch.tensor([[5, 7, 2, 9]])
    out = backbone(tokens)
    assert backbone.model(input_ids=tokens).logits.argmax(-1).tolist() == [[7, 2, 9, 5]]
    assert out.logits.argmax(-1).tolist() == [[7, 7, 2, 9]]
    assert out.logits.shape == (1, 4, len(backbone.tokenizer))
