"""`Backbone.decode`: windowed logits, and the key/value cache on every native backbone.

A recording forward followed by a span forward over the same tokens must give the full
forward's outputs (the cache is exact when nothing changed); once a token changes, a span
forward is an approximation until the next recording.
"""

from __future__ import annotations

import pytest
import torch
from hydra.utils import instantiate

from backplay_exp.transformer.kv_cache import KVCache, splice
from tests.backbones.conftest import native_overrides
from tests.fakes import small_tiny

KINDS = ["tiny", "tiny_noconv", "llada", "dream"]


@pytest.fixture
def make(compose_cfg):
    def _make(kind: str):
        if kind.startswith("tiny"):
            return small_tiny(0, n_layers=3, conv_kernel=0 if kind == "tiny_noconv" else 5)
        cfg = compose_cfg(*native_overrides(kind), tiny=False)
        return instantiate(cfg.backbone).eval()

    return _make


def batch(backbone, length=20, rows=3):
    gen = torch.Generator().manual_seed(0)
    tokens = torch.randint(6, min(60, len(backbone.tokenizer)), (rows, length), generator=gen)
    keep = torch.ones_like(tokens, dtype=torch.bool)
    keep[1, :3] = False  # a left-padded row
    return tokens, keep


def test_splice_by_hand():
    recorded = torch.arange(6.0).view(1, 6)
    assert splice(recorded, torch.tensor([[10.0, 11.0]]), 2, 4, dim=1).tolist() == [
        [0.0, 1.0, 10.0, 11.0, 4.0, 5.0]
    ]


@pytest.mark.parametrize("kind", KINDS)
def test_windowed_logits_are_the_full_forwards(make, kind):
    backbone = make(kind)
    tokens, keep = batch(backbone)
    with torch.no_grad():
        full = backbone(tokens, keep)
        for window in [(0, 20), (7, 15), (1, 2), (12, 20)]:
            out = backbone.decode(tokens, keep, window)
            assert out.logits.shape[1] == window[1] - window[0]
            torch.testing.assert_close(
                out.logits, full.logits[:, window[0] : window[1]], atol=1e-5, rtol=1e-5
            )
            torch.testing.assert_close(out.hidden, full.hidden, atol=0, rtol=0)


@pytest.mark.parametrize("kind", KINDS)
def test_a_span_over_unchanged_tokens_is_exact(make, kind):
    backbone = make(kind)
    tokens, keep = batch(backbone)
    cache = KVCache()
    with torch.no_grad():
        full = backbone(tokens, keep)
        recorded = backbone.decode(tokens, keep, (8, 16), cache.record())
        torch.testing.assert_close(recorded.logits, full.logits[:, 8:16], atol=1e-5, rtol=1e-5)
        for lo, hi in [(8, None), (8, 16), (10, 12)]:  # prefix-style, dual-style, a narrow span
            out = backbone.decode(tokens, keep, (lo, hi or 20), cache.span(lo, hi))
            torch.testing.assert_close(
                out.logits, full.logits[:, lo : hi or 20], atol=1e-5, rtol=1e-5
            )
            torch.testing.assert_close(out.hidden, full.hidden, atol=1e-5, rtol=1e-5)
        # a subset of the recorded rows
        rows = torch.tensor([0, 2])
        out = backbone.decode(tokens[rows], keep[rows], (8, 20), cache.span(8, None, rows))
        torch.testing.assert_close(out.logits, full.logits[rows, 8:20], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("kind", KINDS)
def test_a_changed_token_makes_the_span_approximate_until_the_next_record(make, kind):
    backbone = make(kind)
    tokens, keep = batch(backbone)
    cache = KVCache()
    changed = tokens.clone()
    changed[:, 12] = tokens[:, 12] + 1  # inside the span: its own keys are fresh
    with torch.no_grad():
        backbone.decode(tokens, keep, (8, 20), cache.record())
        stale = backbone.decode(changed, keep, (8, 20), cache.span(8, None)).logits
        exact = backbone(changed, keep).logits[:, 8:20]
        # the recorded keys of positions 0..7 saw the old token 12 (bidirectional attention)
        assert (stale - exact).abs().max() > 1e-4
        backbone.decode(changed, keep, (8, 20), cache.record())
        fresh = backbone.decode(changed, keep, (8, 20), cache.span(8, None)).logits
    torch.testing.assert_close(fresh, exact, atol=1e-5, rtol=1e-5)


def test_a_span_computes_only_its_positions(make):
    backbone = make("llada")
    tokens, keep = batch(backbone)
    seen = []
    backbone.model.blocks[0].q_proj.register_forward_hook(lambda m, i, o: seen.append(i[0].shape))
    lm_rows = []
    backbone.model.lm_head.register_forward_hook(lambda m, i, o: lm_rows.append(i[0].shape[1]))
    cache = KVCache()
    with torch.no_grad():
        backbone.decode(tokens, keep, (8, 16), cache.record())
        backbone.decode(tokens, keep, (8, 16), cache.span(8, 16))
    assert [s[1] for s in seen] == [20, 8]  # queries: the whole sequence, then the span
    assert lm_rows == [8, 8]  # the LM head only ever sees the window


def test_dream_widens_a_span_by_the_position_its_logits_read(make):
    backbone = make("dream")
    tokens, keep = batch(backbone)
    cache = KVCache()
    with torch.no_grad():
        full = backbone(tokens, keep).logits
        backbone.decode(tokens, keep, (8, 16), cache.record())
        out = backbone.decode(tokens, keep, (8, 16), cache.span(8, 16))
    assert cache.lo == 7  # aligned logits at 8 are the raw output at 7
    torch.testing.assert_close(out.logits, full[:, 8:16], atol=1e-5, rtol=1e-5)


def test_backbones_without_native_attention_refuse_a_cache(compose_cfg, model_dirs):
    from tests.backbones.conftest import backbone_overrides

    cfg = compose_cfg(*backbone_overrides("bert", model_dirs["bert"]), tiny=False)
    backbone = instantiate(cfg.backbone).eval()
    tokens = torch.randint(3, 40, (1, 6))
    torch.testing.assert_close(
        backbone.decode(tokens, None, (2, 5)).logits, backbone(tokens).logits[:, 2:5]
    )
    with pytest.raises(ValueError, match=r"sampler/cache=none"):
        backbone.decode(tokens, None, (2, 5), KVCache().record())


@pytest.mark.parametrize("kind", ["llada", "dream"])
def test_cached_decoding_runs_on_the_native_backbones(make, kind):
    from backplay_exp.samplers.cache import DualCache, NoCache, PrefixCache
    from backplay_exp.samplers.decoder import Decoder
    from backplay_exp.samplers.remaskers import NoRemask
    from backplay_exp.samplers.stop import StopRule

    backbone = make(kind)
    tokens, keep = batch(backbone, length=6)
    outs = {}
    for cache in ("none", "prefix", "dual"):
        for k in (2, 4):  # k = 4 = the block: one recorded pass per block, exact
            dec = Decoder(
                NoRemask(),
                8,
                4,
                tokens_per_step=k,
                stop=StopRule(early_stop=False),
                cache={"none": NoCache, "prefix": PrefixCache, "dual": DualCache}[cache](),
            )
            outs[cache, k] = dec.generate(backbone, tokens, keep)
            assert outs[cache, k].nfe.tolist() == [8 // k] * 3
    assert all(torch.equal(outs[c, 4].tokens, outs["none", 4].tokens) for c in ("prefix", "dual"))


@pytest.mark.parametrize("kind", KINDS)
def test_a_set_of_positions_over_unchanged_tokens_is_exact(make, kind):
    """`KVCache.at`: scattered positions (the lazy cache's window) as exact as a span."""
    backbone = make(kind)
    tokens, keep = batch(backbone)
    cols = torch.tensor([5, 9, 12, 13, 14])
    cache = KVCache()
    with torch.no_grad():
        full = backbone(tokens, keep)
        backbone.decode(tokens, keep, (8, 16), cache.record())
        for write_back in (False, True):  # writing exact values back leaves the record exact
            out = backbone.decode(tokens, keep, cols, cache.at(cols, write_back=write_back))
            torch.testing.assert_close(out.logits, full.logits[:, cols], atol=1e-5, rtol=1e-5)
            torch.testing.assert_close(out.hidden, full.hidden, atol=1e-5, rtol=1e-5)
        rows = torch.tensor([0, 2])  # a subset of the recorded rows
        out = backbone.decode(tokens[rows], keep[rows], cols, cache.at(cols, rows, True))
        torch.testing.assert_close(out.logits, full.logits[rows][:, cols], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("kind", ["tiny", "llada"])
def test_write_back_stores_what_a_forward_computed(make, kind):
    """After a token changes, a write-back forward over it puts its fresh keys in the record."""
    backbone = make(kind)
    tokens, keep = batch(backbone)
    changed = tokens.clone()
    changed[:, 12] = tokens[:, 12] + 1
    cols = torch.tensor([12, 13])
    kept, written = KVCache(), KVCache()
    with torch.no_grad():
        for cache in (kept, written):
            backbone.decode(tokens, keep, (8, 16), cache.record())
        backbone.decode(changed, keep, cols, kept.at(cols))
        first = backbone.decode(changed, keep, cols, written.at(cols, write_back=True))
        # position 15 reads position 12's keys: the old ones from `kept`, the fresh from `written`
        at_15 = torch.tensor([15])
        old = backbone.decode(changed, keep, at_15, kept.at(at_15)).logits
        new = backbone.decode(changed, keep, at_15, written.at(at_15)).logits
        again = backbone.decode(changed, keep, cols, written.at(cols)).logits
    assert (old - new).abs().max() > 1e-4
    torch.testing.assert_close(again, first.logits, atol=1e-5, rtol=1e-5)


def test_dream_widens_a_set_of_positions_by_the_ones_its_logits_read(make):
    backbone = make("dream")
    tokens, keep = batch(backbone)
    cache = KVCache()
    cols = torch.tensor([9, 14])
    with torch.no_grad():
        full = backbone(tokens, keep).logits
        backbone.decode(tokens, keep, (8, 16), cache.record())
        out = backbone.decode(tokens, keep, cols, cache.at(cols))
    assert cache.cols.tolist() == [8, 9, 13, 14]  # aligned logits at i are raw outputs at i - 1
    torch.testing.assert_close(out.logits, full[:, cols], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("kind", ["llada", "dream"])
def test_backplay_with_the_lazy_cache_on_the_native_backbones(make, kind):
    """The published-layout fixture through `backbone=llada_8b|dream_7b`: BackPlay + lazy runs,
    and equals the uncached decode where the policy is exact (every step records)."""
    from backplay_exp.samplers.cache import NoCache
    from backplay_exp.samplers.decoder import Decoder
    from backplay_exp.samplers.lazy_cache import LazyWindowCache
    from tests.fakes import backplay_policy, stop_rule
    from tests.unit.test_lazy_cache import head

    backbone = make(kind)
    tokens, keep = batch(backbone, length=6)
    outs, caches = {}, {}
    for name, cache, stride in [
        ("none", NoCache(), 1),
        ("exact", LazyWindowCache(refresh_on_judge=True), 1),  # stride 1: every step records
        ("lazy", LazyWindowCache(), 2),
        ("none, stride 2", NoCache(), 2),
        ("tail", LazyWindowCache(tail_masks=4), 2),  # a block of 4: always at its tail
        ("readers", LazyWindowCache(readers=0.3), 2),
        ("tail, readers", LazyWindowCache(tail_masks=4, readers=0.3), 2),
    ]:
        pol = backplay_policy(block_buffer=1, threshold=0.62, stride=stride)
        dec = Decoder(pol, 12, 4, tokens_per_step=2, cache=cache, stop=stop_rule(False))
        outs[name] = dec.generate(backbone, tokens, keep, head=head(0, backbone.hidden_size))
        assert not (outs[name].tokens == backbone.mask_id).any()
        caches[name] = cache
    assert outs["none"].remasks.sum() > 0 and outs["lazy"].remasks.sum() > 0
    assert caches["exact"].steps == 0  # every step recorded (no row ran into its step cap)
    assert caches["lazy"].steps > 0 and caches["lazy"].window_steps > 0
    assert torch.equal(outs["exact"].tokens, outs["none"].tokens)
    assert torch.equal(outs["exact"].nfe, outs["none"].nfe)
    assert caches["tail"].steps == 0  # tail_masks = block length: every step records, exact
    assert torch.equal(outs["tail"].tokens, outs["none, stride 2"].tokens)
    assert torch.equal(outs["tail"].nfe, outs["none, stride 2"].nfe)
    assert caches["readers"].steps > 0  # runs cached; it claims no exactness of its own
    assert torch.equal(outs["tail, readers"].tokens, outs["none, stride 2"].tokens)


@pytest.mark.parametrize("kind", KINDS)
def test_first_queries_keys_are_the_forward_s(make, kind):
    """What the readers watch computes without a forward is what the first block computes in
    one (embedding, learned positions, norm, q/k biases, rotary under left padding)."""
    backbone = make(kind)
    tokens, keep = batch(backbone)
    first = backbone.model.blocks[0]
    seen = []
    inner = first.queries_keys
    first.queries_keys = lambda x, rope: seen.append(inner(x, rope)) or seen[-1]
    backbone.decode(tokens, keep)
    q, k = backbone.first_queries_keys(tokens, backbone.positions(tokens, keep))
    torch.testing.assert_close(q, seen[0][0])
    torch.testing.assert_close(k, seen[0][1])
    cols = torch.tensor([2, 7, 11])  # any subset of positions, computed alone
    q_at, k_at = backbone.first_queries_keys(
        tokens[:, cols], backbone.positions(tokens, keep)[:, cols]
    )
    torch.testing.assert_close(k_at, k[:, :, cols])
    torch.testing.assert_close(q_at, q[:, :, cols])


def first_layer_share(backbone, record, now, keep, lo):
    """(b, lo) the most each context query of `now` attends to positions changed since
    `record`, in some head: the first layer's attention computed from scratch."""
    q, k = backbone.first_queries_keys(now, backbone.positions(now, keep))
    k = k.repeat_interleave(q.shape[1] // k.shape[1], 1)  # query head h reads h // group
    scores = (q @ k.transpose(-1, -2) / q.shape[-1] ** 0.5).float()
    probs = scores.masked_fill(~keep[:, None, None, :], -torch.inf).softmax(-1)
    changed = now != record  # (b, L)
    share = (probs * changed[:, None, None, :]).sum(-1).amax(1)[:, :lo]  # (b, lo)
    return share.masked_fill(~keep[:, :lo], 0)


@pytest.mark.parametrize("kind", KINDS)
def test_readers_are_the_first_layer_attention_s(make, kind):
    """The watch's running share (the record's normaliser, moved step by step by the keys that
    changed) names the context positions that the first layer's attention computed from
    scratch puts above the threshold, over several steps, a token changed back included."""
    from backplay_exp.samplers.readers import ReaderWatch

    backbone = make(kind)
    tokens, keep = batch(backbone)
    lo, hi = 12, 16  # the block; the changes fall in the window [8, 16)
    watch = ReaderWatch(0.0)
    watch.record(backbone, tokens, keep, lo)
    now = tokens.clone()
    steps = [
        lambda x: x[:, 12].fill_(50),  # every row commits position 12
        lambda x: (x[0, 13].fill_(51), x[1, 9].fill_(52)),  # per row, different changes
        lambda x: (x[0, 12].fill_(53), x[2, 12].copy_(tokens[2, 12])),  # changed again; back
    ]
    for step in steps:
        step(now)
        share = first_layer_share(backbone, tokens, now, keep, lo)
        ranked = share.amax(0).sort().values  # (lo,) the most each position reads, some row
        watch.share = ((ranked[lo // 2 - 1] + ranked[lo // 2]) / 2).item()  # half read more
        found = watch.readers(backbone, now, None, (8, hi))
        assert 0 < len(found) < lo
        assert found.tolist() == (share > watch.share).any(0).nonzero().squeeze(1).tolist()
    rows = torch.tensor([0, 2])  # a step over some of the record's rows
    now[2, 13] = 54
    share = first_layer_share(backbone, tokens, now, keep, lo)[rows]
    found = watch.readers(backbone, now[rows], rows, (8, hi))
    assert found.tolist() == (share > watch.share).any(0).nonzero().squeeze(1).tolist()
