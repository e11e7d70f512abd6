import math

import torch

from backplay_exp.artifacts import lbc_corrupt, uniform_corrupt

MASK, Z = 2, 99  # Z: the fake model's prediction, never a clean token
V = 100


def fake_model(conf_by_pos, seen):
    """Predicts Z everywhere with a per-position confidence; records its input."""

    def logits_fn(tokens):
        seen.append(tokens.clone())
        b, n = tokens.shape
        logits = torch.zeros(b, n, V)
        # softmax prob of Z grows with conf_by_pos (other V-1 logits are 0)
        logits[..., Z] = torch.as_tensor(conf_by_pos, dtype=torch.float)[None, :n]
        return logits

    return logits_fn


def test_lbc_everything_visible_then_all_masked_picks_top_confidence():
    # t = 0: x_t = x0; Δ = 1: x_{t+Δ} masks every maskable token; ρ = 0.5 of 4 candidates
    x0 = torch.tensor([[10, 11, 12, 13, 14, 15]])
    maskable = torch.tensor([[0, 0, 1, 1, 1, 1]], dtype=torch.bool)  # 2-token prompt
    seen = []
    conf = [0, 0, 1.0, 4.0, 3.0, 2.0]
    art = lbc_corrupt(
        x0,
        maskable,
        fake_model(conf, seen),
        MASK,
        torch.tensor([0.0]),
        torch.tensor([1.0]),
        torch.tensor([0.5]),
    )
    assert seen[0].tolist() == [[10, 11, MASK, MASK, MASK, MASK]]
    # the two most confident candidates (positions 3, 4) get the prediction, the rest stay clean
    assert art.x.tolist() == [[10, 11, 12, Z, Z, 15]]
    assert art.labels.tolist() == [[True, True, True, False, False, True]]
    assert art.scored.tolist() == maskable.tolist()  # the prompt is never scored


def test_lbc_rho_rounds_up_and_one_writes_all():
    x0 = torch.tensor([[10, 11, 12]])
    maskable = torch.ones_like(x0, dtype=torch.bool)
    for rho, n_written in ((0.01, 1), (0.34, 2), (1.0, 3)):
        art = lbc_corrupt(
            x0,
            maskable,
            fake_model([1, 2, 3], []),
            MASK,
            torch.tensor([0.0]),
            torch.tensor([1.0]),
            torch.tensor([rho]),
        )
        assert (art.x == Z).sum().item() == n_written == math.ceil(rho * 3)


def test_lbc_candidates_are_masked_after_but_visible_before():
    g = torch.Generator().manual_seed(0)
    x0 = torch.arange(10, 74).reshape(2, 32)
    maskable = torch.ones_like(x0, dtype=torch.bool)
    maskable[:, :4] = False
    seen = []
    conf = torch.linspace(0, 5, 32).tolist()
    art = lbc_corrupt(
        x0,
        maskable,
        fake_model(conf, seen),
        MASK,
        torch.tensor([0.3, 0.5]),
        torch.tensor([0.4, 0.3]),
        torch.tensor([0.6, 0.6]),
        generator=g,
    )
    x_td = seen[0]
    masked_t = art.x == MASK  # still masked in x̃ = masked in x_t
    cand = (x_td == MASK) & ~masked_t  # masked in x_{t+Δ}, visible in x_t
    written = art.x == Z
    assert (written <= cand).all()
    assert ((x_td == MASK) >= masked_t).all()  # x_{t+Δ} is more corrupted than x_t
    for row in range(2):
        n = int(cand[row].sum())
        assert int(written[row].sum()) == math.ceil(0.6 * n)
        # the written ones are the most confident candidates (confidence grows with position)
        cand_pos = cand[row].nonzero().flatten()
        assert written[row, cand_pos[-math.ceil(0.6 * n) :]].all()
    clean = ~written & ~masked_t
    assert (art.x[clean] == x0[clean]).all()  # ground truth everywhere else
    assert (art.labels == (art.x == x0)).all()
    assert (art.scored == (maskable & ~masked_t)).all()


def test_lbc_t_plus_delta_is_clipped_to_one():
    x0 = torch.tensor([[10, 11, 12, 13]])
    maskable = torch.ones_like(x0, dtype=torch.bool)
    seen = []
    art = lbc_corrupt(
        x0,
        maskable,
        fake_model([1, 1, 1, 1], seen),
        MASK,
        torch.tensor([0.8]),
        torch.tensor([0.9]),
        torch.tensor([1.0]),
        torch.Generator().manual_seed(1),
    )
    assert (seen[0] == MASK).all()  # t + Δ = 1: everything masked before the prediction
    assert ((art.x == MASK) | (art.x == Z)).all()


def test_uniform_replaces_a_fraction_of_visible_tokens_with_allowed_ids():
    g = torch.Generator().manual_seed(0)
    x0 = torch.full((4, 4000), 10)
    maskable = torch.ones_like(x0, dtype=torch.bool)
    allowed = torch.tensor([20, 21, 22])
    art = uniform_corrupt(
        x0,
        maskable,
        MASK,
        torch.tensor([0.0, 0.0, 0.5, 0.0]),
        torch.tensor([0.0, 0.3, 0.3, 1.0]),
        allowed,
        g,
    )
    replaced = ~art.labels & art.scored
    rate = replaced.float().sum(-1) / art.scored.float().sum(-1)
    assert rate[0] == 0 and rate[3] == 1
    assert abs(rate[1] - 0.3) < 0.03 and abs(rate[2] - 0.3) < 0.03
    assert set(art.x[replaced].unique().tolist()) <= {20, 21, 22}
    assert abs((art.x[2] == MASK).float().mean() - 0.5) < 0.03  # x_t masks are not scored
    assert not art.scored[art.x == MASK].any()
