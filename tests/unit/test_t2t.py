"""Token editing (T2T): draft artifacts, the edit rule, termination, edit counting."""

import pytest
import torch

from backplay_exp.artifacts import draft_corrupt
from backplay_exp.artifacts.uniform import RandomVocabArtifact
from backplay_exp.metrics import edit_outcomes, summarize
from backplay_exp.modules.edit import edit_loss
from backplay_exp.samplers.commit import ThresholdSchedule
from backplay_exp.samplers.editors import ThresholdEditor, edit_positions
from backplay_exp.samplers.remaskers import NoRemask
from backplay_exp.tasks.eval import reference_tokens
from tests import fakes
from tests.fakes import DisagreeingBackbone, EditTableBackbone, FixedHead, tok_id

MASK, V = 2, 50


def argmax_model(guess_by_pos, seen):
    """Predicts `guess_by_pos[i]` at position i (whatever the input); records its input."""

    def logits_fn(tokens):
        seen.append(tokens.clone())
        b, n = tokens.shape
        logits = torch.zeros(b, n, V)
        logits[:, torch.arange(n), torch.as_tensor(guess_by_pos[:n])] = 5.0
        return logits

    return logits_fn


def test_draft_fills_every_masked_position_with_the_argmax():
    x0 = torch.tensor([[10, 11, 12, 13, 14, 15]])
    maskable = torch.tensor([[0, 0, 1, 1, 1, 1]], dtype=torch.bool)  # 2-token prompt
    guess = [40, 41, 12, 43, 14, 45]  # right at positions 2 and 4, wrong at 3 and 5
    seen = []
    art = draft_corrupt(x0, maskable, argmax_model(guess, seen), MASK, torch.tensor([1.0]))
    # t = 1: every maskable token was masked for the single draft pass
    assert seen[0].tolist() == [[10, 11, MASK, MASK, MASK, MASK]]
    assert len(seen) == 1
    # fully visible: each mask holds the draft's argmax; the prompt is untouched
    assert art.x.tolist() == [[10, 11, 12, 43, 14, 45]]
    assert art.labels.tolist() == [[True, True, True, False, True, False]]
    assert art.scored.tolist() == maskable.tolist()
    assert not (art.x == MASK).any()


def test_draft_keeps_unmasked_tokens_clean():
    x0 = torch.tensor([[10, 11, 12, 13]])
    maskable = torch.ones_like(x0, dtype=torch.bool)
    art = draft_corrupt(x0, maskable, argmax_model([40] * 4, []), MASK, torch.tensor([0.0]))
    assert art.x.tolist() == x0.tolist()  # t = 0: nothing drafted
    assert art.labels.all()
    art = draft_corrupt(
        x0,
        maskable,
        argmax_model([40] * 4, []),
        MASK,
        torch.tensor([0.5]),
        torch.Generator().manual_seed(0),
    )
    drafted = art.x == 40
    assert 0 < drafted.sum() < 4  # some drafted, the rest clean
    assert (art.x[~drafted] == x0[~drafted]).all()
    assert (art.labels == ~drafted).all()


def test_random_vocab_is_named_as_the_t2t_baseline():
    art = RandomVocabArtifact(0.0, 0.0, 1.0, 1.0)
    assert art.name == "random_vocab"


def test_edit_loss_is_cross_entropy_at_scored_positions():
    logits = torch.zeros(1, 3, 4)
    logits[0, 0, 1] = 10.0  # confident and right at position 0
    x0 = torch.tensor([[1, 2, 3]])
    scored = torch.tensor([[True, True, False]])
    expected = torch.nn.functional.cross_entropy(logits[0, :2], x0[0, :2], reduction="mean").item()
    assert edit_loss(logits, x0, scored).item() == pytest.approx(expected)
    assert edit_loss(logits, x0, torch.zeros_like(scored)).item() == 0.0


def test_edit_rule_on_fixed_predictions():
    x = torch.tensor([[5, 6, 7, 8]])
    x_hat = torch.tensor([[5, 9, 9, 9]])
    conf = torch.tensor([[0.99, 0.95, 0.5, 0.99]])
    editable = torch.tensor([[True, True, True, False]])
    # position 0 agrees, 2 is below the threshold, 3 is not editable: only 1 is edited
    assert edit_positions(x, x_hat, conf, editable, 0.9).tolist() == [[False, True, False, False]]
    assert edit_positions(x, x_hat, conf, editable, 0.4).tolist() == [[False, True, True, False]]


def decode(bb, policy, gen=4, block=4, k=2, head=None, **kw):
    return fakes.decode(bb, head, policy, gen, block, k, **kw)


def edits(threshold, **kw):
    """Decoder keywords of LLaDA2.1's token editing at `threshold` (`remask=t2t_edit`)."""
    return {"editor": ThresholdEditor(threshold)} | kw


def test_decoder_edits_a_wrong_token_after_the_block_is_filled():
    # commits a,b then x,d; at visible positions the model reads "abcd": x -> c is an edit
    bb = EditTableBackbone({"x": list("abxd")}, {"x": [4.0, 3, 2, 1]}, {"x": list("abcd")})
    out = decode(bb, NoRemask(), **edits(0.9))
    assert bb.tokenizer.decode(out.tokens[0]) == "abcd"
    assert out.edits.tolist() == [1]
    # step 0 commits a,b; step 1 commits x,d; step 2 edits x -> c; step 3 changes nothing
    assert out.nfe.tolist() == [4]
    c, x = tok_id(bb.tokenizer, "c"), tok_id(bb.tokenizer, "x")
    assert out.edit_events.tolist() == [[0, 2, x, c]]
    # above the model's confidence nothing is edited; one settling step after the last commit
    out = decode(bb, NoRemask(), **edits(0.9999999))
    assert bb.tokenizer.decode(out.tokens[0]) == "abxd"
    assert out.edits.tolist() == [0] and out.nfe.tolist() == [3]
    # without editing the decoder is the plain confidence loop
    assert decode(bb, NoRemask()).nfe.tolist() == [2]


def test_editing_terminates_with_an_editor_that_always_disagrees():
    bb = DisagreeingBackbone({"x": list("abababab")}, {"x": [8.0, 7, 6, 5, 4, 3, 2, 1]})
    out = decode(bb, NoRemask(), gen=8, block=4, max_steps_factor=3, **edits(0.5))
    plain = 2  # steps per block at k=2
    assert out.nfe.item() == 2 * 3 * plain  # every block runs to its step cap, then stops
    assert out.edits.item() > 0
    assert not (out.tokens == bb.mask_id).any()


def test_threshold_commits_every_confident_mask():
    bb = EditTableBackbone({"x": list("abcd")}, {"x": [9.0, 8, 7, 1]}, {"x": list("abcd")})
    # LLaDA2.1's S-Mode commits: every mask above 0.5, at least k = 1 (sampler/commit=s_mode)
    out = decode(bb, NoRemask(), k=1, **edits(0.9, commit=ThresholdSchedule(0.5, 1)))
    # step 0 commits a, b, c (confidence > 0.5), step 1 commits d, step 2 settles
    assert out.nfe.tolist() == [3]
    assert decode(bb, NoRemask(), k=1, **edits(0.9)).nfe.tolist() == [5]


def test_backplay_with_edits_remasks_and_edits_in_one_decoder():
    bb = EditTableBackbone({"x": list("abxd")}, {"x": [4.0, 3, 2, 1]}, {"x": list("abcd")})
    pol = fakes.backplay_policy(max_remask=1, block_buffer=0, memory_steps=100)
    dec = fakes.Decoder(pol, 4, 4, tokens_per_step=2, editor=ThresholdEditor(0.9))
    assert dec.name == "backplay+edit"
    out = decode(bb, pol, head=FixedHead([0.0, 0.9, 0.0, 0.0]), **edits(0.9))  # flags position 1
    assert out.remasks.item() == 1 and out.edits.item() == 1
    assert bb.tokenizer.decode(out.tokens[0]) == "abcd"


def test_edit_outcomes_count_fixed_and_broken_tokens():
    reference = torch.tensor([[1, 2, 3], [1, 2, 3]])
    events = torch.tensor(
        [
            [0, 1, 9, 2],  # wrong -> right: fixed
            [0, 2, 3, 8],  # right -> wrong: broke
            [1, 0, 7, 6],  # wrong -> wrong: neither
            [1, 1, 9, 2],  # fixed
        ]
    )
    assert edit_outcomes(events, reference) == ([1, 1], [1, 0])
    assert edit_outcomes(torch.zeros(0, 4, dtype=torch.long), reference) == ([0, 0], [0, 0])


def test_reference_tokens_pad_with_eos_and_need_every_reference():
    from backplay_exp.benchmarks.base import Problem
    from backplay_exp.data.tokenizer import char_tokenizer

    tok = char_tokenizer()
    eos = tok.eos_token_id
    ref = reference_tokens(tok, [Problem("a", "p", "1", {"response": "ab"})], 4, eos)
    assert ref.tolist() == [[tok_id(tok, "a"), tok_id(tok, "b"), eos, eos]]
    assert reference_tokens(tok, [Problem("a", "p", "1")], 4, eos) is None


def test_edit_intensity_is_edits_per_generated_token():
    rec = dict(correct=True, nfe=4, remasks=0, wall_s=1.0)
    metrics = summarize(
        [
            rec | dict(edits=2, edits_fixed=1, edits_broke=1, tokens=10),
            rec | dict(edits=0, edits_fixed=0, edits_broke=0, tokens=10),
        ]
    )
    assert metrics["edit_intensity"] == pytest.approx(0.1)
    assert metrics["edits_mean"] == 1.0
    assert metrics["edits_fixed_mean"] == 0.5 and metrics["edits_broke_mean"] == 0.5


def test_t2t_thresholds_are_checked():
    with pytest.raises(ValueError, match=r"sampler\.editor\.threshold"):
        ThresholdEditor(1.5)
    with pytest.raises(ValueError, match="0 < threshold < 1"):
        ThresholdSchedule(-0.1)
