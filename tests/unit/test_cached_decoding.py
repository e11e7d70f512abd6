"""Windowed outputs, the key/value cache's refresh rule and threshold-parallel commits."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from backplay_exp.samplers.cache import DualCache, NoCache, PrefixCache
from backplay_exp.samplers.commit import ThresholdSchedule
from backplay_exp.samplers.decoder import Decoder
from backplay_exp.samplers.remaskers import NoRemask
from backplay_exp.samplers.select import widen
from tests.fakes import FixedHead, TableBackbone, backplay_policy, small_tiny, stop_rule, tok_id

CACHES = {"none": NoCache, "prefix": PrefixCache, "dual": DualCache}


def test_widen_puts_the_window_back_in_place():
    x = torch.tensor([[7, 8, 9, 2, 2]])
    conf = torch.tensor([[0.3, 0.9]], dtype=torch.float64)
    x_hat, conf = widen(torch.tensor([[5, 6]]), conf, x, (2, 4))
    assert x_hat.tolist() == [[7, 8, 5, 6, 2]]  # outside the window: the tokens themselves
    assert conf.tolist() == [[0.0, 0.0, 0.3, 0.9, 0.0]]


def test_threshold_counts_by_hand():
    schedule = ThresholdSchedule(threshold=0.9, min_tokens=1)
    cand = torch.tensor([[1, 1, 1, 0], [1, 1, 0, 0], [0, 0, 0, 0]], dtype=torch.bool)
    conf = torch.tensor([[0.95, 0.91, 0.5, 0.99], [0.2, 0.3, 0.99, 0.99], [0.99] * 4])
    plan = schedule.plan(torch.tensor([4, 4, 4]), num_blocks=1)
    step = SimpleNamespace(in_block=torch.zeros(3, dtype=torch.long), candidates=cand, conf=conf)
    counts = schedule.counts(plan, step)
    # row 0: two candidates above 0.9 (the 0.99 is no candidate); row 1: none, so the floor
    # of one; row 2: no candidate at all
    assert counts.tolist() == [2, 1, 0]
    assert ThresholdSchedule(0.9, min_tokens=3).plain_steps(8, 1) == 3
    with pytest.raises(ValueError, match="0 < threshold < 1"):
        ThresholdSchedule(1.0)


def test_threshold_decoding_commits_every_confident_mask_and_at_least_one():
    # logit 10 over a ~50-token vocabulary is p > 0.99; logits 2 and 1 are p < 0.2
    bb = TableBackbone({"x": list("abcd")}, {"x": [10.0, 2.0, 10.0, 1.0]})
    dec = Decoder(NoRemask(), 4, 4, None, ThresholdSchedule(0.9))
    out = dec.generate(bb, torch.tensor([[tok_id(bb.tokenizer, "x")]]))
    assert bb.tokenizer.decode(out.tokens[0]) == "abcd"
    assert out.nfe.tolist() == [3]  # {a, c} together, then b, then d


def at(win_lo, lo, hi, length=17):
    """The fields of a `DecodeState` a cache policy reads: block [lo, hi), window from win_lo."""
    x = torch.zeros(3, length, dtype=torch.long)
    return SimpleNamespace(win_lo=win_lo, lo=lo, hi=hi, x=x, mask_id=1)


def test_refresh_rule_by_hand():
    rows = torch.tensor([0, 1, 2])
    for mode, end in (("prefix", None), ("dual", 9)):
        cache = CACHES[mode]()
        cache.start_block()
        kv, window = cache.step(at(5, 5, 9), rows)
        assert kv.recording and window == (5, 9)  # a block's first step records
        kv.tapped(torch.zeros(3, 17, 4))
        kv, _ = cache.step(at(5, 5, 9), torch.tensor([0, 2]))  # row 1 finished the block
        assert (kv.recording, kv.cols, kv.rows.tolist()) == (False, slice(5, end), [0, 2])
        kv, _ = cache.step(at(5, 5, 9), rows)
        assert kv.rows is None  # all recorded rows, in order: no gather
        cache.start_block()
        kv, _ = cache.step(at(9, 9, 13), torch.tensor([0, 2]))
        assert kv.recording and cache.records == 2
        kv.tapped(torch.zeros(2, 17, 4))
        with pytest.raises(RuntimeError, match="joined the block"):
            cache.step(at(9, 9, 13), rows)
    assert NoCache().step(at(5, 5, 9), rows) == (None, (5, 9))
    with pytest.raises(TypeError, match=r"sampler/cache=<option>"):
        Decoder(NoRemask(), 8, 4, cache="dual")  # the old string key


def test_judge_refresh_records_when_the_head_judges():
    rows = torch.tensor([0, 1])
    for refresh, records in (("block", 1), ("judge", 2)):
        cache = PrefixCache(refresh_on_judge=refresh == "judge")
        cache.start_block()
        cache.step(at(5, 5, 9), rows)[0].tapped(torch.zeros(2, 17, 4))  # block start: records
        assert not cache.step(at(5, 5, 9), rows)[0].recording  # a commit-only step: cached
        kv, _ = cache.step(at(5, 5, 9), torch.tensor([1]), judging=True)  # the head judges
        assert kv.recording == (refresh == "judge") and cache.records == records
        if kv.recording:  # the new record holds the rows still decoding
            kv.tapped(torch.zeros(1, 17, 4))
            assert cache.step(at(5, 5, 9), torch.tensor([1]))[0].rows is None


def spans(backbone):
    """Records `(recording, first computed position, positions computed)` of each decode."""
    calls = []
    original = backbone.decode

    def spy(tokens, attention_mask=None, outputs=None, cache=None):
        out = original(tokens, attention_mask, outputs, cache)
        if cache is not None:
            where = cache.positions(tokens.shape[1])
            calls.append((cache.recording, where.start, where.stop - where.start, outputs))
        return out

    backbone.decode = spy
    return calls


@pytest.mark.parametrize("mode", ["prefix", "dual"])
def test_each_block_records_once_then_computes_from_the_window(mode):
    backbone = small_tiny(0)
    calls = spans(backbone)
    prompt = torch.randint(6, 40, (2, 5), generator=torch.Generator().manual_seed(0))
    dec = Decoder(
        NoRemask(), 12, 4, tokens_per_step=2, cache=CACHES[mode](), stop=stop_rule(early_stop=False)
    )
    out = dec.generate(backbone, prompt)
    assert out.nfe.tolist() == [6, 6]  # caching changes the cost of a step, not the steps
    total = 5 + 12
    expected = []
    for block in range(3):
        lo, hi = 5 + 4 * block, 9 + 4 * block
        expected.append((True, 0, total, (lo, hi)))  # the block's first step: full, recorded
        expected.append((False, lo, (total if mode == "prefix" else hi) - lo, (lo, hi)))
    assert calls == expected


def test_backplay_recomputes_its_whole_look_back_window():
    backbone = small_tiny(1)
    calls = spans(backbone)
    pol = backplay_policy(block_buffer=1, threshold=0.0)  # remask whenever it may
    dec = Decoder(
        pol, 12, 4, tokens_per_step=2, cache=DualCache(), stop=stop_rule(early_stop=False)
    )
    out = dec.generate(backbone, torch.randint(6, 40, (1, 5)), head=FixedHead())
    assert out.remasks.item() > 0
    later = [(lo, n) for recording, lo, n, _ in calls if not recording]
    # block 2's window starts at block 1 (buffer 1): positions 5.. through its end at 13
    assert (5, 8) in later and all(lo >= 5 for lo, _ in later)


def test_one_step_per_block_makes_the_cache_exact():
    # with k = the block length, every step is a block's first: recorded full passes only
    backbone = small_tiny(2)
    prompt = torch.randint(6, 40, (4, 6), generator=torch.Generator().manual_seed(1))
    outs = [
        Decoder(NoRemask(), 12, 4, tokens_per_step=4, cache=CACHES[mode]()).generate(
            backbone, prompt
        )
        for mode in ("none", "prefix", "dual")
    ]
    assert all(torch.equal(o.tokens, outs[0].tokens) for o in outs[1:])


def test_guidance_and_a_cache_do_not_mix():
    with pytest.raises(ValueError, match=r"sampler/cache=none with sampler\.cfg_scale"):
        Decoder(NoRemask(), 8, 4, cfg_scale=1.0, cache=PrefixCache())
