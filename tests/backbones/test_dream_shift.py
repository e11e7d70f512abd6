"""Dream's next-token logits realigned to positions, on cases worked out by hand."""

from __future__ import annotations

import torch

from backplay_exp.backbones.dream import shift_to_positions


def test_shift_by_hand():
    # raw[:, i] is about token i+1; rows of 2 features so the copy at position 0 is visible
    raw = torch.tensor([[[10.0, 11.0], [20.0, 21.0], [30.0, 31.0], [40.0, 41.0]]])
    aligned = shift_to_positions(raw)
    # position 0 copies raw[0] (Dream's reference), then each position takes the one before
    assert aligned.tolist() == [[[10.0, 11.0], [10.0, 11.0], [20.0, 21.0], [30.0, 31.0]]]
    assert raw.tolist()[0][3] == [40.0, 41.0]  # input untouched; raw[-1] (about token L) dropped
