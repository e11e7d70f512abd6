"""scripts/cache_divergence.py: cached vs exact proposals per step, on a random tiny backbone."""

from __future__ import annotations

import pytest
import torch

from tests.fakes import small_tiny
from tests.scripts import script_module


def prompts(backbone) -> tuple[torch.Tensor, torch.Tensor]:
    """Two prompts of the toy alphabet, the second left-padded by two positions."""
    tok = backbone.tokenizer
    ids = torch.tensor([tok.encode("3+4=?*2=?"), tok.encode("..1+2=?*3")])
    mask = torch.ones_like(ids, dtype=torch.bool)
    mask[1, :2] = False
    return ids, mask


@pytest.mark.parametrize("cache", ["dual", "prefix"])
def test_stale_record_diverges_and_fresh_does_not(cache: str) -> None:
    """A bidirectional model sees the commits: the stale record diverges, a fresh one is exact."""
    backbone = small_tiny(0)
    ids, mask = prompts(backbone)
    with script_module("cache_divergence") as script:
        stale = script.divergence(backbone, ids, mask, 8, 4, 1, cache)
        fresh = script.divergence(backbone, ids, mask, 8, 4, 1, cache, fresh=True)
    # 2 blocks of 4, one commit per step: cached steps 1-3 of each, 3, 2, 1 masks left
    assert [(r["block"], r["step"], r["masks_left"]) for r in stale] == [
        (b, s, 4.0 - s) for b in (0, 4) for s in (1, 2, 3)
    ]
    assert max(r["tv"] for r in stale) > 1e-3
    assert max(r["tv"] for r in fresh) < 1e-6
    assert max(r["argmax_differs"] for r in fresh) == 0.0


def test_unknown_cache_is_named() -> None:
    backbone = small_tiny(0)
    ids, mask = prompts(backbone)
    with (
        script_module("cache_divergence") as script,
        pytest.raises(ValueError, match="dual or prefix"),
    ):
        script.divergence(backbone, ids, mask, 8, 4, 1, "lazy")
