"""The Monte Carlo ELBO: its draws, a hand-worked expected value, and its spread vs mc_num."""

from __future__ import annotations

import statistics

import torch

from backplay_exp.harness.likelihood import (
    left_pad,
    mc_loglikelihood,
    sample_masks,
    stratified_counts,
)

MASK, PAD = 9, 8


def test_stratified_counts_spread_each_request_over_its_ratios():
    lengths = torch.tensor([4, 3, 1])
    counts = stratified_counts(lengths, 4, torch.Generator().manual_seed(0))
    assert counts.shape == (3, 4)
    assert sorted(counts[0].tolist()) == [1, 2, 3, 4]  # L = n: every ratio once
    assert set(counts[1].tolist()) <= {1, 2, 3} and counts[2].tolist() == [1, 1, 1, 1]
    # each sample alone is uniform on 1..L (the estimate stays unbiased)
    many = stratified_counts(torch.full((6000,), 3), 2, torch.Generator().manual_seed(1))
    for column in many.T:
        share = torch.bincount(column, minlength=4)[1:].float() / len(column)
        assert torch.allclose(share, torch.full((3,), 1 / 3), atol=0.03)


def test_masks_cover_exactly_count_positions_of_the_continuation():
    masks = sample_masks(
        torch.tensor([2, 4, 1]), torch.tensor([2, 3, 1]), 5, torch.Generator().manual_seed(0)
    )
    assert masks.sum(-1).tolist() == [2, 3, 1]
    assert not masks[0, :3].any() and not masks[1, :1].any() and not masks[2, :4].any()


class CountingModel:
    """log p(x_i) = c_i + d * (number of the other continuation tokens left visible).

    A 2-token vocabulary: the target is token 0 with log-probability v, token 1 takes the rest.
    """

    def __init__(self, c: list[float], d: float, width: int):
        self.c, self.d, self.width, self.calls = torch.tensor(c), d, width, 0

    def __call__(self, tokens, attention, window):
        self.calls += 1
        lo = window[0]
        cont = tokens[:, -self.width :]  # (N, L): the continuation is right-aligned
        visible = (cont != MASK).sum(-1, keepdim=True) - (cont != MASK).int()  # others visible
        logp = self.c + self.d * visible  # (N, L) log p of the target
        other = torch.log(-torch.expm1(logp))  # log(1 - p)
        logits = torch.stack([logp, other], -1)  # (N, L, 2): already log-normalised
        return logits[:, lo - (tokens.shape[1] - self.width) :]


def test_expected_value_is_the_hand_worked_elbo():
    # L = 3, c = (-2, -3, -4), d = 0.5, loss = (L / l) * sum_{i in M} -(c_i + d (L - l)).
    # A uniform subset M of size l holds l / L of sum(c) on average, so
    #   E[loss | l] = -sum(c) - L d (L - l) = 9 - 1.5 (3 - l)   -> 6, 7.5, 9 for l = 1, 2, 3
    # and over l ~ U{1, 2, 3}: E[loss] = 7.5, so the estimate's expected value is -7.5
    model = CountingModel([-2.0, -3.0, -4.0], 0.5, 3)
    sequence = [[1, 2, 0, 0, 0]]  # context (1, 2), continuation three 0s
    estimates = [
        float(mc_loglikelihood(model, sequence, [3], MASK, PAD, 60, 30,
                               torch.Generator().manual_seed(seed))[0])
        for seed in range(40)
    ]  # fmt: skip
    mean = statistics.fmean(estimates)
    sem = statistics.stdev(estimates) / len(estimates) ** 0.5
    assert abs(mean - (-7.5)) < 4 * sem + 1e-9
    assert model.calls == 40 * 2  # 60 samples in passes of 30 rows


def test_two_tokens_stratified_is_exact():
    # L = 2: log p = a with the other token visible, b with it masked. mc_num = 2 draws l = 1
    # and l = 2 once each: (-2a) and (-2b) -> the estimate is a + b with no spread at all
    a, b = -1.0, -3.0
    model = CountingModel([b, b], a - b, 2)
    for seed in range(5):
        got = mc_loglikelihood(model, [[5, 0, 0]], [2], MASK, PAD, 2, 2,
                               torch.Generator().manual_seed(seed))  # fmt: skip
        assert torch.allclose(got, torch.tensor([a + b], dtype=torch.float64))


def test_spread_shrinks_with_mc_num_on_the_tiny_backbone(compose_cfg):
    from hydra.utils import instantiate

    torch.manual_seed(0)
    tiny = instantiate(compose_cfg().backbone).eval()  # untrained: any likelihood will do
    ids = tiny.tokenizer("3+4=?*2=?", add_special_tokens=False)["input_ids"]
    cont = tiny.tokenizer("3+4=2*2=4####4", add_special_tokens=False)["input_ids"]

    def logits(tokens, attention, window):
        with torch.no_grad():
            return tiny.decode(tokens, attention, window).logits

    spread = {}
    for n in (2, 32):
        runs = [
            float(mc_loglikelihood(logits, [ids + cont], [len(cont)], tiny.mask_id,
                                   tiny.pad_id, n, 64, torch.Generator().manual_seed(s))[0])
            for s in range(12)
        ]  # fmt: skip
        spread[n] = statistics.stdev(runs)
    assert spread[32] < spread[2] / 2  # ~1/sqrt(16) = 1/4 for independent draws


def test_left_pad_right_aligns():
    tokens, attention = left_pad([[1, 2], [3]], PAD)
    assert tokens.tolist() == [[1, 2], [PAD, 3]]
    assert attention.tolist() == [[True, True], [False, True]]
