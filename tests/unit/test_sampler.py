import itertools

import pytest
import torch

from backplay_exp.samplers.commit import FixedK, LladaSchedule, step_counts
from backplay_exp.samplers.decoder import Decoder
from backplay_exp.samplers.order import RandomOrder
from backplay_exp.samplers.remaskers import NoRemask
from backplay_exp.samplers.select import propose_tokens, select_top
from tests.fakes import TableBackbone, stop_rule, tok_id


def prompts(backbone, keys):
    return torch.tensor([[tok_id(backbone.tokenizer, k)] for k in keys])


def commit_order(backbone, row=0):
    """Response positions in the order they stopped being masks, one list per forward."""
    order, mask_id = [], backbone.mask_id
    seen = [s[row, backbone.prompt_len :] for s in backbone.seen]
    for before, after in itertools.pairwise(seen):
        order.append(((before == mask_id) & (after != mask_id)).nonzero().flatten().tolist())
    return order


def test_confidence_commits_most_confident_first_within_blocks():
    bb = TableBackbone({"x": list("abcd")}, {"x": [1.0, 5.0, 9.0, 2.0]})
    dec = Decoder(NoRemask(), gen_length=4, block_length=2, tokens_per_step=1)
    out = dec.generate(bb, prompts(bb, "x"))
    assert bb.tokenizer.decode(out.tokens[0]) == "abcd"
    bb.seen.append(torch.cat([prompts(bb, "x"), out.tokens], 1))  # the final state
    # block 1 = positions 0,1 (1 before 0), then block 2 (2 before 3); 9.0 waits for its block
    assert commit_order(bb) == [[1], [0], [2], [3]]
    assert out.nfe.tolist() == [4]


def test_k_tokens_per_step_and_nfe():
    bb = TableBackbone({"x": list("abcdef")}, {"x": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]})
    dec = Decoder(NoRemask(), gen_length=6, block_length=6, tokens_per_step=4)
    out = dec.generate(bb, prompts(bb, "x"))
    bb.seen.append(torch.cat([prompts(bb, "x"), out.tokens], 1))
    assert commit_order(bb) == [[2, 3, 4, 5], [0, 1]]
    assert out.nfe.tolist() == [2]  # ceil(6 / 4)


def test_early_stop_after_block_with_eos_fills_eos_and_counts_nfe_per_row():
    toks = {"x": ["a", "<eos>", "b", "c", "d", "e"], "y": list("abcdef")}
    scores = {"x": [2.0, 1.0, 1, 1, 1, 1], "y": [6.0, 5, 4, 3, 2, 1]}
    bb = TableBackbone(toks, scores)
    dec = Decoder(NoRemask(), gen_length=6, block_length=2, tokens_per_step=1)
    out = dec.generate(bb, prompts(bb, "xy"))
    eos = bb.eos_id
    assert out.tokens[0].tolist()[1:] == [eos] * 5  # row x stopped after block 1
    assert bb.tokenizer.decode(out.tokens[1]) == "abcdef"
    assert out.nfe.tolist() == [2, 6]
    # the stopped row is not fed to later forwards
    assert [len(s) for s in bb.seen] == [2, 2, 1, 1, 1, 1]


def test_no_early_stop_decodes_everything():
    bb = TableBackbone({"x": ["<eos>", "a"]}, {"x": [2.0, 1.0]})
    dec = Decoder(NoRemask(), gen_length=2, block_length=1, stop=stop_rule(early_stop=False))
    out = dec.generate(bb, prompts(bb, "x"))
    assert out.tokens[0].tolist() == [bb.eos_id, tok_id(bb.tokenizer, "a")]
    assert out.nfe.tolist() == [2]


def test_random_order_commits_in_generator_order():
    bb = TableBackbone({"x": list("abcd")}, {"x": [4.0, 3.0, 2.0, 1.0]})
    dec = Decoder(NoRemask(), 4, 4, tokens_per_step=1, order=RandomOrder())
    dec.generate(bb, prompts(bb, "x"), generator=torch.Generator().manual_seed(0))
    first = commit_order(bb)
    bb.seen.clear()
    dec.generate(bb, prompts(bb, "x"), generator=torch.Generator().manual_seed(0))
    assert commit_order(bb) == first  # reproducible with the same generator
    orders = set()
    for seed in range(20):
        bb.seen.clear()
        dec.generate(bb, prompts(bb, "x"), generator=torch.Generator().manual_seed(seed))
        orders.add(tuple(p for step in commit_order(bb) for p in step))
    assert len(orders) > 3  # not the confidence order every time


def test_select_top_variable_counts_and_candidates():
    scores = torch.tensor([[0.1, 0.9, 0.5, 0.7], [0.3, 0.2, 0.8, 0.1]])
    cand = torch.tensor([[1, 1, 1, 0], [1, 1, 0, 1]], dtype=torch.bool)
    sel = select_top(scores, cand, torch.tensor([2, 5]))
    assert sel.tolist() == [[False, True, True, False], [True, True, False, True]]
    assert not select_top(scores, cand, torch.tensor([0, 0])).any()


def test_propose_tokens_argmax_and_confidence():
    logits = torch.log(torch.tensor([[[0.2, 0.7, 0.1], [0.5, 0.25, 0.25]]]))
    x_hat, conf = propose_tokens(logits, temperature=0.0)
    assert x_hat.tolist() == [[1, 0]]
    assert conf[0].tolist() == pytest.approx([0.7, 0.5])


def test_propose_tokens_never_proposes_the_mask():
    logits = torch.log(torch.tensor([[[0.2, 0.7, 0.1], [0.5, 0.25, 0.25]]]))
    x_hat, conf = propose_tokens(logits, temperature=0.0, mask_id=1)
    assert x_hat.tolist() == [[0, 0]]  # the runner-up where the mask wins
    assert conf[0].tolist() == pytest.approx([0.2, 0.5])  # the mask's mass still counts
    x_hot, _ = propose_tokens(logits, temperature=1.0, generator=torch.Generator(), mask_id=1)
    assert (x_hot != 1).all()


@pytest.mark.timeout(30)  # before the fix this looped forever
def test_decoding_finishes_when_the_model_prefers_the_mask():
    class MaskLover(TableBackbone):  # the argmax is the mask token everywhere
        def forward(self, tokens, attention_mask=None):
            out = super().forward(tokens, attention_mask)
            out.logits[..., self.mask_id] = 1e4
            return out

    backbone = MaskLover({"a": list("12345678")}, {"a": [1.0] * 8})
    decoder = Decoder(NoRemask(), gen_length=8, block_length=4, tokens_per_step=2)
    out = decoder.generate(backbone, prompts(backbone, "a"))
    assert out.tokens.tolist() == [[tok_id(backbone.tokenizer, c) for c in "12345678"]]
    assert out.nfe.tolist() == [4]


def test_llada_schedule_spreads_block_masks():
    plan = LladaSchedule(steps=10).plan(torch.tensor([32, 4]), num_blocks=2)  # 5 steps/block
    assert plan.tolist() == [[7, 7, 6, 6, 6], [1, 1, 1, 1, 0]]
    # past the plan (remasking added masks) the largest count is used, capped by masks left
    got = step_counts(plan, torch.tensor([6, 2]), torch.tensor([3, 5]))
    assert got.tolist() == [3, 1]


def test_tokens_per_step_larger_than_block_is_rejected():
    with pytest.raises(ValueError, match="tokens_per_step=8 exceeds block_length=4"):
        Decoder(NoRemask(), gen_length=8, block_length=4, tokens_per_step=8)
    with pytest.raises(ValueError, match="tokens_per_step must be >= 1"):
        FixedK(0)


def test_llada_geometry_errors():
    with pytest.raises(ValueError, match="not a multiple of block_length"):
        Decoder(NoRemask(), 10, 4, None, LladaSchedule(4))
    with pytest.raises(ValueError, match="not a multiple of the number of blocks"):
        Decoder(NoRemask(), 8, 4, None, LladaSchedule(3))


def test_stop_rule_by_hand():
    from backplay_exp.samplers.state import DecodeState
    from backplay_exp.samplers.stop import StopRule

    m, eos = 9, 8
    state = DecodeState.start(torch.tensor([[1], [1], [1], [1]]), None, 4, mask_id=m)
    state.x[:, 1:] = torch.tensor([[3, m, 3, m], [3, eos, m, m], [3, 3, m, m], [3, eos, m, m]])
    state.enter_block(1, 3, 1)  # block = positions 1, 2 (of 4 response positions)
    state.done[3] = True
    stop = StopRule(early_stop=True, max_steps_factor=2).bind(plain_steps=2)  # cap: 4 steps
    rows = stop.rows(state, eos, final_check=True)
    # row 0 still holds a mask; row 1 finished its block with EoS: a final check; row 2 finished
    # without EoS before the last block: it just moves on; row 3 is done
    assert rows.tolist() == [0, 1] and state.judge.tolist() == [False, True, False, False]
    state.in_block[1] = 4  # at the cap: no more checks
    assert stop.rows(state, eos, final_check=True).tolist() == [0]
    assert stop.rows(state, eos, final_check=False).tolist() == [0]
    state.x[0, 2] = 3
    assert stop.rows(state, eos, final_check=False) is None  # the block is finished
    stop.end_block(state, eos)
    # row 1 stops early (EoS in its block): its tail is EoS; rows 0 and 2 go on
    assert state.done.tolist() == [False, True, False, True]
    assert state.x[1, 3:].tolist() == [eos, eos] and state.x[0, 3:].tolist() == [3, m]


def test_decoder_names_its_arm_after_its_components():
    from backplay_exp.samplers.editors import ThresholdEditor
    from tests.fakes import backplay_policy

    assert Decoder(NoRemask(), 4, 2).name == "confidence"
    assert Decoder(NoRemask(), 4, 2, order=RandomOrder()).name == "random_order"
    assert Decoder(NoRemask(), 4, 2, editor=ThresholdEditor(0.5, "Q")).name == "t2t_edit(Q)"
    assert Decoder(backplay_policy(), 4, 2).name == "backplay"
    with pytest.raises(TypeError, match="sampler/order=<option>"):
        Decoder(NoRemask(), 4, 2, order="random")
