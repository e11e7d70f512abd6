import pytest
import torch

from backplay_exp.samplers.remaskers import (
    RandomRemasker,
    remask_candidates,
    select_remask,
)
from tests.fakes import ErrorHead, FixedHead, TableBackbone, decode, make_step
from tests.fakes import backplay_policy as policy


def test_threshold_and_top_k():
    err = torch.tensor([[0.9, 0.8, 0.7, 0.2]])
    cand = torch.ones_like(err, dtype=torch.bool)
    assert select_remask(err, cand, 0.75, 2).tolist() == [[True, True, False, False]]
    assert select_remask(err, cand, 0.85, 2).tolist() == [[True, False, False, False]]
    assert select_remask(err, cand, 0.5, 1).tolist() == [[True, False, False, False]]
    assert select_remask(err, cand, 0.95, 2).tolist() == [[False] * 4]
    # only candidates: the highest-error token is not committed in the window
    cand[0, 0] = False
    assert select_remask(err, cand, 0.5, 2).tolist() == [[False, True, True, False]]


def test_stride_and_block_start():
    step = torch.tensor([0, 3, 4, 5, 8])
    start = torch.tensor([False, False, False, True, False])
    assert policy(stride=4).due(step, start).tolist() == [True, False, True, False, True]
    with_start = policy(stride=4, check_block_start=True).due(step, start)
    assert with_start.tolist() == [True, False, True, True, True]


def test_anti_repetition_memory():
    committed = torch.ones(1, 4, dtype=torch.bool)
    last = torch.tensor([[-(10**9), 5, 2, 9]])
    got = remask_candidates(committed, torch.tensor([10]), last, memory_steps=8)
    assert got.tolist() == [[True, False, True, False]]  # remasked at steps 5 and 9: blocked


def test_policy_only_acts_on_due_rows():
    state = make_step(
        x=torch.zeros(2, 3, dtype=torch.long),
        committed=torch.ones(2, 3, dtype=torch.bool),
        due=torch.tensor([True, False]),
        step=torch.tensor([4, 4]),
        last_remask=torch.full((2, 3), -(10**9)),
    )
    head = ErrorHead(torch.tensor([[0.9, 0.1, 0.95], [0.9, 0.9, 0.9]]))
    got = policy(max_remask=1).select(state, head)
    assert got.tolist() == [[False, False, True], [False, False, False]]


def test_random_policy_scores_are_uniform_and_seeded():
    state = make_step(
        x=torch.zeros(1, 1000, dtype=torch.long),
        committed=torch.ones(1, 1000, dtype=torch.bool),
        due=torch.tensor([True]),
        step=torch.tensor([0]),
        last_remask=torch.full((1, 1000), -(10**9)),
    )
    pol = policy(cls=RandomRemasker, threshold=0.0, max_remask=1000, block_buffer=0)
    a = pol.select(state, None, torch.Generator().manual_seed(0))
    b = pol.select(state, None, torch.Generator().manual_seed(0))
    assert torch.equal(a, b)
    pol.threshold = 0.5
    frac = pol.select(state, None, torch.Generator().manual_seed(0)).float().mean()
    assert abs(frac - 0.5) < 0.05


def test_rollback_remasked_token_is_regenerated_and_adds_steps():
    bb = TableBackbone({"x": list("abcd")}, {"x": [4.0, 3.0, 2.0, 1.0]})
    head = FixedHead([0.9, 0.0, 0.0, 0.0])  # flags position 0 whenever it is committed
    # memory 3: position 0 is remasked once per 3 steps at most
    out = decode(bb, head, policy(memory_steps=100), gen=4, block=4)
    assert bb.tokenizer.decode(out.tokens[0]) == "abcd"
    assert out.remasks.tolist() == [1]
    assert out.nfe.tolist() == [5]  # 4 plain steps + 1 to re-commit the remasked token


def test_window_excludes_blocks_beyond_the_buffer():
    bb = TableBackbone({"x": list("abcdef")}, {"x": [6.0, 5.0, 4.0, 3.0, 2.0, 1.0]})
    head = FixedHead([0.9, 0.0, 0.0, 0.0, 0.0, 0.0])  # only block 0's first token looks wrong
    out = decode(bb, head, policy(block_buffer=0, memory_steps=100), gen=6, block=2)
    assert out.remasks.tolist() == [1]  # judged while block 0 was current
    bb.seen.clear()
    out = decode(bb, head, policy(block_buffer=1, memory_steps=100), gen=6, block=2)
    assert out.remasks.tolist() == [1]  # memory blocks a second remask of the same index
    # memory 2: remasked every other step while it is in the window (blocks 0 and 1: 3 times)
    out = decode(bb, head, policy(block_buffer=1, memory_steps=2), gen=6, block=2)
    assert out.remasks.tolist() == [3]
    # a buffer of 2 keeps block 0 in the window while block 2 decodes: 2 more
    out = decode(bb, head, policy(block_buffer=2, memory_steps=2), gen=6, block=2)
    assert out.remasks.tolist() == [5]


def test_terminates_when_the_head_flags_everything():
    bb = TableBackbone({"x": list("abcdefgh")}, {"x": [8.0, 7, 6, 5, 4, 3, 2, 1]})
    out = decode(
        bb,
        FixedHead(None),
        policy(max_remask=8, memory_steps=0),
        gen=8,
        block=4,
        k=2,
        max_steps_factor=3,
    )
    plain = 2  # steps per block at k=2
    assert out.nfe.item() <= 2 * (3 * plain + 4)  # bounded, then the blocks finish
    assert bb.tokenizer.decode(out.tokens[0]) == "abcdefgh"
    assert out.remasks.item() > 0


def test_head_runs_only_on_due_steps():
    bb = TableBackbone({"x": list("abcdefgh")}, {"x": [8.0, 7, 6, 5, 4, 3, 2, 1]})
    head = FixedHead([0.0] * 8)
    out = decode(bb, head, policy(stride=4), gen=8, block=8)
    assert out.nfe.item() == 8
    assert head.calls == 2  # steps 0 and 4


def test_final_check_judges_the_last_block_before_stopping():
    toks = {"x": ["a", "b", "c", "<eos>"]}
    bb = TableBackbone(toks, {"x": [4.0, 3.0, 2.0, 1.0]})
    head = FixedHead([0.0, 0.0, 0.9, 0.0])
    plain = decode(bb, head, policy(stride=100, memory_steps=100), gen=4, block=4)
    assert plain.remasks.item() == 0  # stride never due after step 0: nothing judged
    checked = decode(
        bb, head, policy(stride=100, memory_steps=100, final_check=True), gen=4, block=4
    )
    assert checked.remasks.item() == 1
    # one judging forward that remasks, one to re-commit, one more judge that passes
    assert checked.nfe.item() == plain.nfe.item() + 3


def test_backplay_needs_a_head():
    bb = TableBackbone({"x": list("ab")}, {"x": [2.0, 1.0]})
    with pytest.raises(ValueError, match="needs a correction head"):
        decode(bb, None, policy(), gen=2, block=2)


def test_roll_back_by_hand():
    from backplay_exp.samplers.remaskers import roll_back

    remask = torch.tensor([[0, 0, 1, 0, 1, 0], [0, 0, 0, 0, 0, 0]], dtype=torch.bool)
    committed = torch.tensor([[1, 1, 1, 1, 1, 0], [1, 1, 1, 1, 1, 1]], dtype=torch.bool)
    # row 0: from position 2 (the leftmost flagged) every committed token; row 1: nothing flagged
    assert roll_back(remask, committed).int().tolist() == [[0, 0, 1, 1, 1, 0], [0] * 6]
