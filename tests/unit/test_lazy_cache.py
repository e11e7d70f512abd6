"""The lazy-window cache (`sampler/cache=lazy`) and the cached correction head."""

from __future__ import annotations

import pytest
import torch

from backplay_exp.heads.transformer import CorrectionHead
from backplay_exp.samplers.cache import DualCache, NoCache
from backplay_exp.samplers.decoder import Decoder
from backplay_exp.samplers.head_cache import CachedHead
from backplay_exp.samplers.lazy_cache import LazyWindowCache
from backplay_exp.samplers.remaskers import NoRemask
from backplay_exp.samplers.state import DecodeState
from tests.fakes import backplay_policy, small_tiny, stop_rule

MASK = 1


def state_at(x: torch.Tensor, win_lo: int, lo: int, hi: int) -> DecodeState:
    """A batch whose current block is [lo, hi), its window from win_lo."""
    state = DecodeState.start(x[:, :2], None, x.shape[1] - 2, MASK)
    state.x = x.clone()
    state.enter_block(lo, hi, win_lo)
    return state


def test_the_lazy_step_computes_the_block_and_what_the_window_needs_by_hand():
    x = torch.full((2, 14), 7)
    x[:, 9:] = MASK  # the block [9, 13) and the suffix are masked
    cache = LazyWindowCache()
    cache.reset()
    cache.start_block()
    state = state_at(x, 5, 9, 13)
    rows = torch.tensor([0, 1])
    kv, window = cache.step(state, rows)
    assert kv.recording and window == (5, 13)  # a block's first step records the canvas
    kv._layers, kv._hidden = [{}], torch.zeros(2, 14, 3)  # as a forward would record
    kv, window = cache.step(state, rows)  # nothing in the window changed: the block alone
    assert (kv.cols, window) == (slice(9, 13), (9, 13)) and kv.write_back
    state.x[1, 6] = MASK  # row 1's token 6 was remasked: its proposal is needed
    state.x[0, 7] = 8  # row 0's token 7 was committed anew since it was computed
    kv, window = cache.step(state, rows)
    assert window.tolist() == [6, 9, 10, 11, 12]  # the union over rows; 7 waits for a judge
    kv, window = cache.step(state, rows, judging=True)
    assert window.tolist() == [6, 7, 9, 10, 11, 12]  # the head must not read 7's old state
    kv, window = cache.step(state, rows, judging=True)
    assert window.tolist() == [6, 9, 10, 11, 12]  # 7 is computed now; 6 is still a mask
    fresh = LazyWindowCache(fresh_judge=True)
    fresh.reset()
    fresh.start_block()
    fresh.step(state, rows)[0]._layers = [{}]
    assert fresh.step(state, rows, judging=True)[1].tolist() == list(range(5, 13))
    assert (cache.steps, cache.window_steps) == (4, 3)


def test_confidence_decoding_with_the_lazy_cache_is_the_dual_cache():
    backbone = small_tiny(3)
    prompt = torch.randint(6, 40, (3, 5), generator=torch.Generator().manual_seed(2))
    outs = [
        Decoder(NoRemask(), 12, 4, tokens_per_step=2, cache=cache).generate(backbone, prompt)
        for cache in (DualCache(), LazyWindowCache())
    ]
    assert torch.equal(outs[0].tokens, outs[1].tokens)


def head(seed: int = 0, d_in: int = 32) -> CorrectionHead:
    torch.manual_seed(seed)
    return CorrectionHead(d_in, 16, 2, 2, 2.0, 3, 10000.0).eval()


def test_backplay_with_the_lazy_cache_is_exact_when_every_step_records():
    """The policy's claim of exactness: a position is exact when nothing changed since its
    record; with `refresh_on_judge` and a head that judges every step, every step records."""
    backbone = small_tiny(4)
    prompt = torch.randint(6, 40, (3, 5), generator=torch.Generator().manual_seed(3))
    outs = []
    for cache in (NoCache(), LazyWindowCache(refresh_on_judge=True)):
        pol = backplay_policy(block_buffer=1, threshold=0.6, stride=1)
        dec = Decoder(pol, 12, 4, tokens_per_step=2, cache=cache, stop=stop_rule(False))
        outs.append(dec.generate(backbone, prompt, head=head(1)))
    assert outs[0].remasks.sum() > 0
    assert torch.equal(outs[0].tokens, outs[1].tokens)
    assert torch.equal(outs[0].nfe, outs[1].nfe)


def test_backplay_with_the_lazy_cache_recomputes_less_than_the_dual_cache():
    backbone = small_tiny(5)
    computed = {"n": 0, "forwards": 0}
    decode = backbone.decode

    def counting(tokens, attention_mask=None, outputs=None, cache=None):
        if not cache.recording:  # positions a cached (not a recording) forward computes
            computed["n"] += tokens[:, cache.positions(tokens.shape[1])].shape[1]
            computed["forwards"] += 1
        return decode(tokens, attention_mask, outputs, cache)

    backbone.decode = counting
    prompt = torch.randint(6, 40, (2, 5), generator=torch.Generator().manual_seed(4))
    spent = {}
    for name, cache in (("dual", DualCache()), ("lazy", LazyWindowCache())):
        computed["n"] = computed["forwards"] = 0
        pol = backplay_policy(block_buffer=2, threshold=0.7, stride=2)
        dec = Decoder(pol, 16, 4, tokens_per_step=2, cache=cache, stop=stop_rule(False))
        out = dec.generate(backbone, prompt, head=head(2))
        spent[name] = computed["n"] / computed["forwards"]
        assert not (out.tokens == backbone.mask_id).any() and out.remasks.sum() > 0
    # the dual cache recomputes the window (up to 3 blocks of 4) at every cached step
    assert spent["dual"] > 8 and spent["lazy"] < 0.75 * spent["dual"]  # 10.0 vs 6.3


def test_the_cached_head_recomputes_only_what_changed():
    h = head(3)
    policy = LazyWindowCache()
    policy.reset()
    cached = CachedHead(h, policy)
    hidden = torch.randn(2, 10, 32, generator=torch.Generator().manual_seed(5))
    keep = torch.ones(2, 10, dtype=torch.bool)
    policy.seen, policy.step_rows = torch.zeros(2, 10), torch.tensor([0, 1])
    policy.dirty = torch.ones(2, 10, dtype=torch.bool)  # a record: everything changed
    with torch.no_grad():
        torch.testing.assert_close(cached(hidden, keep), h(hidden, keep))
        assert not policy.dirty.any()
        assert torch.equal(cached(hidden, keep), h(hidden, keep))  # nothing changed: recorded
        seen = []
        hook = h.proj.register_forward_hook(lambda m, i, o: seen.append(i[0].shape[1]))
        changed = hidden.clone()
        changed[:, [3, 7]] += 1.0
        policy.dirty[:, [3, 7]] = True
        approx = cached(changed, keep)
        hook.remove()
        exact = h(changed, keep)
    assert seen == [2]  # only the two changed positions went through the head
    torch.testing.assert_close(approx[:, [3, 7]], exact[:, [3, 7]], atol=0.2, rtol=0)
    assert (approx - exact).abs().max() > 0  # elsewhere: recorded, stale by the change
    assert isinstance(LazyWindowCache().head(h), CachedHead)
    assert LazyWindowCache(head_cache=False).head(h) is h
    uncacheable = lambda hidden, attention_mask: hidden[..., 0]  # noqa: E731 (a user's head)
    assert LazyWindowCache().head(uncacheable) is uncacheable  # runs as it is


def test_tail_masks_records_the_block_s_last_commits_by_hand():
    """With tail_masks=2 a step records once some row has at most 2 masks left in the block."""
    x = torch.full((2, 14), 7)
    x[:, 9:] = MASK  # the block [9, 13): 4 masks in each row
    cache = LazyWindowCache(tail_masks=2)
    cache.reset()
    cache.start_block()
    state = state_at(x, 5, 9, 13)
    rows = torch.tensor([0, 1])
    assert cache.step(state, rows)[0].recording  # the block's first step
    cache.kv._layers, cache.kv._hidden = [{}], torch.zeros(2, 14, 3)
    state.x[0, 9] = 8  # row 0: 3 masks left
    state.x[1, 9:11] = 8  # row 1: 2 left, at its tail
    kv, window = cache.step(state, rows)
    assert kv.recording and window == (5, 13) and cache.records == 2
    state.x[1, 9:11] = MASK  # a remask: 3 and 4 masks left, no row at its tail
    cache.kv._layers = [{}]
    kv, window = cache.step(state, rows)
    assert not kv.recording and window == (9, 13)
    state.x[:, 9:13] = 8  # the block is complete: a final check's step records too
    assert cache.step(state, rows)[0].recording
    assert LazyWindowCache().at_tail(state, state.x) is False  # off by default
    with pytest.raises(ValueError, match="tail_masks"):
        LazyWindowCache(tail_masks=-1)
