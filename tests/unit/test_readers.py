"""The lazy cache's `readers` refresh: the first layer's attention onto what changed."""

from __future__ import annotations

import math

import pytest
import torch

from backplay_exp.samplers.lazy_cache import LazyWindowCache
from backplay_exp.samplers.readers import attention_share, key_mass, log_normalizer
from tests.fakes import small_tiny
from tests.unit.test_lazy_cache import state_at


def test_log_normalizer_by_hand():
    """hd = 1: the scores are q * k; the padded key is left out of the normaliser."""
    q = torch.tensor([1.0, 2.0]).view(1, 1, 2, 1)  # (b, H, L, hd)
    k = torch.tensor([0.0, math.log(2), math.log(5)]).view(1, 1, 3, 1)
    q = torch.cat([q, torch.zeros(1, 1, 1, 1)], 2)  # a third query, all scores 0
    keep = torch.tensor([[True, True, False]])
    lse = log_normalizer(q, k, keep)  # (1, 1, 3)
    expected = [math.log(1 + 2), math.log(1 + 4), math.log(2)]
    torch.testing.assert_close(lse[0, 0], torch.tensor(expected))


def test_attention_share_by_hand():
    """Three keys all 0 at the record; key 2 changes to ln 4. A query with q = 1 then puts
    4 / (1 + 1 + 4) = 2/3 on it, one with q = 2 (same key head) 16 / 18 = 8/9."""
    q = torch.tensor([1.0, 2.0]).view(1, 2, 1, 1)  # (b, H=2, n=1, hd=1), one key head
    k_rec = torch.zeros(1, 1, 3, 1)
    lse = log_normalizer(q, k_rec, torch.ones(1, 3, dtype=torch.bool))  # log 3 for both
    k_new = torch.full((1, 1, 1, 1), math.log(4))
    keys = torch.cat([k_rec[:, :, 2:], k_new], 2)  # the record's key 2, then today's
    weight = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]])  # (b, c, [old, new])
    old, new = key_mass(q, keys, lse, weight).unbind(-1)  # 1/3 for both; 4/3, 16/3
    torch.testing.assert_close(old.flatten(), torch.tensor([1 / 3, 1 / 3]))
    torch.testing.assert_close(new.flatten(), torch.tensor([4 / 3, 16 / 3]))
    torch.testing.assert_close(attention_share(old, new).flatten(), torch.tensor([2 / 3, 8 / 9]))
    none = key_mass(q, keys, lse, torch.zeros(1, 2, 1))  # keys left out of their row
    assert none.abs().max() == 0


def test_readers_are_the_context_positions_that_read_a_change():
    """The cached step adds the context positions the watch names; nothing changed, none."""
    backbone = small_tiny(0)
    x = torch.randint(6, 40, (2, 14), generator=torch.Generator().manual_seed(0))
    x[:, 9:] = backbone.mask_id  # the block [9, 13) and the suffix are masked
    state = state_at(x, 5, 9, 13)
    state.mask_id = backbone.mask_id
    rows = torch.tensor([0, 1])
    cache = LazyWindowCache(readers=1e-9)  # any attention at all on a change
    cache.reset(backbone)
    cache.start_block()
    assert cache.step(state, rows)[0].recording  # records, and the watch with it
    cache.kv._layers, cache.kv._hidden = [{}], torch.zeros(2, 14, 3)
    assert cache.step(state, rows)[1] == (9, 13)  # nothing changed: the block alone
    state.x[0, 9] = 20  # row 0 commits a token of the block
    window = cache.step(state, rows)[1]
    assert window.tolist() == list(range(13))  # every context position reads it a little
    strict = LazyWindowCache(readers=0.99)
    strict.reset(backbone)
    strict.start_block()
    state.x[0, 9] = backbone.mask_id
    strict.step(state, rows)[0]._layers = [{}]
    state.x[0, 9] = 20
    assert strict.step(state, rows)[1] == (9, 13)  # no position puts 99% on one token
    assert (cache.name, strict.name) == ("lazy+readers", "lazy+readers")


def test_a_fresh_judge_adds_the_readers_left_of_the_window():
    """With `fresh_judge` a judging step computes the whole window [5, 9) and, with `readers`,
    the prompt positions [0, 5) that read the block's change as well."""
    backbone = small_tiny(0)
    x = torch.randint(6, 40, (2, 14), generator=torch.Generator().manual_seed(0))
    x[:, 9:] = backbone.mask_id
    state = state_at(x, 5, 9, 13)
    state.mask_id = backbone.mask_id
    rows = torch.tensor([0, 1])
    for readers, expected in ((1e-9, range(13)), (0.0, range(5, 13))):
        cache = LazyWindowCache(fresh_judge=True, readers=readers)
        cache.reset(backbone)
        cache.start_block()
        state.x[0, 9] = backbone.mask_id
        cache.step(state, rows)[0]._layers = [{}]  # the record
        state.x[0, 9] = 20  # row 0 commits a token of the block
        assert cache.step(state, rows, judging=True)[1].tolist() == list(expected)


def test_readers_refuse_a_bad_share_and_a_backbone_without_a_first_layer():
    for share in (-0.1, 1.0):
        with pytest.raises(ValueError, match=r"sampler\.cache\.readers"):
            LazyWindowCache(readers=share)
    with pytest.raises(ValueError, match=r"sampler/cache=none.*sampler\.cache\.readers=0"):
        LazyWindowCache(readers=0.3).reset(object())
    LazyWindowCache().reset(object())  # off: any backbone
