import math

import pytest
import torch

from backplay_exp.diffusion import (
    head_bce_loss,
    mask_tokens,
    maskable_positions,
    sample_mask_prob,
    sft_loss,
)

EOS, A, B, P = 1, 5, 6, 7


def test_eos_rule_keeps_only_first_eos_maskable():
    #            prompt | a  b  E  E  E  E
    x0 = torch.tensor([[P, P, A, B, EOS, EOS, EOS, EOS]])
    resp = torch.tensor([[0, 0, 1, 1, 1, 1, 1, 1]], dtype=torch.bool)
    got = maskable_positions(x0, resp, EOS, eos_maskable=2)
    assert got.tolist() == [[False, False, True, True, True, True, False, False]]
    assert maskable_positions(x0, resp, EOS, 0).tolist() == [[0, 0, 1, 1, 0, 0, 0, 0]]
    assert maskable_positions(x0, resp, EOS, None).tolist() == resp.tolist()


def test_eos_rule_per_row_and_all_eos_response():
    x0 = torch.tensor([[P, A, EOS, EOS, EOS], [P, EOS, EOS, EOS, EOS]])
    resp = torch.tensor([[0, 1, 1, 1, 1], [0, 1, 1, 1, 1]], dtype=torch.bool)
    got = maskable_positions(x0, resp, EOS, eos_maskable=1)
    # row 0: answer 'a' + one EoS; row 1: empty answer, its first EoS is maskable
    assert got.tolist() == [[0, 1, 1, 0, 0], [0, 1, 0, 0, 0]]


def test_mask_prob_is_linear_in_t_with_eps_floor():
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    p = sample_mask_prob(5, eps=1e-3, generator=g1)
    t = torch.rand(5, generator=g2)
    assert torch.allclose(p, (1 - 1e-3) * t + 1e-3)
    assert (p >= 1e-3).all()
    assert (p <= 1).all()


def test_masking_rate_matches_p_mask_and_respects_maskable():
    g = torch.Generator().manual_seed(0)
    x0 = torch.full((4, 5000), A)
    maskable = torch.ones_like(x0, dtype=torch.bool)
    maskable[:, :1000] = False  # e.g. a prompt
    p = torch.tensor([0.0, 0.25, 0.5, 1.0])
    xt, mask = mask_tokens(x0, maskable, p, mask_id=2, generator=g)
    rates = mask[:, 1000:].float().mean(-1)
    assert rates[0] == 0 and rates[3] == 1
    assert abs(rates[1] - 0.25) < 0.02 and abs(rates[2] - 0.5) < 0.02
    assert not mask[:, :1000].any()
    assert (xt[mask] == 2).all() and (xt[~mask] == A).all()


def test_sft_loss_one_masked_token_by_hand():
    # one sequence, two maskable tokens, the first masked with p_mask = 0.5
    logits = torch.zeros(1, 2, 3)
    logits[0, 0] = torch.tensor([2.0, 0.0, 0.0])
    x0 = torch.tensor([[0, 1]])
    mask = torch.tensor([[True, False]])
    maskable = torch.tensor([[True, True]])
    ce = -(2.0 - math.log(math.exp(2.0) + 2.0))
    loss = sft_loss(logits, x0, mask, torch.tensor([0.5]), maskable)
    assert loss.item() == pytest.approx(ce / (0.5 * 2))


def test_sft_loss_averages_rows_with_their_own_normaliser():
    logits = torch.zeros(2, 4, 2)  # uniform predictions: CE = log 2 everywhere
    x0 = torch.zeros(2, 4, dtype=torch.long)
    mask = torch.tensor([[1, 0, 0, 0], [1, 1, 0, 0]], dtype=torch.bool)
    maskable = torch.tensor([[1, 1, 0, 0], [1, 1, 1, 1]], dtype=torch.bool)
    p = torch.tensor([0.5, 0.25])
    loss = sft_loss(logits, x0, mask, p, maskable)
    row0 = math.log(2) / (0.5 * 2)
    row1 = 2 * math.log(2) / (0.25 * 4)
    assert loss.item() == pytest.approx((row0 + row1) / 2)


def test_sft_loss_is_zero_with_nothing_masked():
    logits = torch.randn(1, 3, 4)
    none = torch.zeros(1, 3, dtype=torch.bool)
    assert sft_loss(logits, torch.zeros(1, 3, dtype=torch.long), none, torch.ones(1), ~none) == 0


def test_head_bce_only_on_scored_positions():
    logits = torch.tensor([[0.0, 100.0, -100.0]])
    labels = torch.tensor([[1, 0, 0]], dtype=torch.bool)
    scored = torch.tensor([[True, False, True]])
    # scored: position 0 (p=0.5, label 1) and 2 (p~0, label 0): mean of log 2 and ~0
    assert head_bce_loss(logits, labels, scored).item() == pytest.approx(math.log(2) / 2)
    assert head_bce_loss(logits, labels, torch.zeros_like(scored)).item() == 0
