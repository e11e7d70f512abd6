"""The trace recorder (samplers/trace/recorder.py): hand-worked records, and a no-op when off."""

from __future__ import annotations

import math

import pytest
import torch

from backplay_exp.backbones.base import Backbone, BackboneOutput
from backplay_exp.data.tokenizer import char_tokenizer
from backplay_exp.samplers.cache import DualCache
from backplay_exp.samplers.decoder import Decoder
from backplay_exp.samplers.editors import ThresholdEditor
from backplay_exp.samplers.lazy_cache import LazyWindowCache
from backplay_exp.samplers.remaskers import NoRemask
from backplay_exp.samplers.trace.files import write_trace
from backplay_exp.samplers.trace.recorder import NoTrace, TraceRecorder
from backplay_exp.samplers.trace.records import (
    decode_header,
    read_records,
    read_trace,
    trace_records,
)
from tests.fakes import EditTableBackbone, backplay_policy, small_tiny, stop_rule


class GuessingBackbone(Backbone):
    """Response of 4 tokens after the one-token prompt "x", with given probabilities.

    Position 0 guesses `q` (0.6; `a` 0.3) while position 1 is masked, and says `a` (0.9; `q`
    0.05) once position 1 shows; positions 1-3 propose `b`, `c`, `d` (0.5, 0.7, 0.5) with a
    runner-up (`e` 0.2, `f` 0.2, `g` 0.3). The rest of the mass is spread evenly. The hidden
    state of a position is its token id, so that a head can read the tokens.
    """

    name = "guessing"

    def __init__(self) -> None:
        super().__init__(char_tokenizer())
        self.hidden_size = 1
        self.dummy = torch.nn.Parameter(torch.zeros(1))

    def probs(self, pairs: list[tuple[str, float]]) -> torch.Tensor:
        v = len(self.tokenizer)
        rest = (1 - sum(p for _, p in pairs)) / (v - len(pairs))
        out = torch.full((v,), rest)
        for char, p in pairs:
            out[self.tokenizer.convert_tokens_to_ids(char)] = p
        return out

    def forward(self, tokens, attention_mask=None):
        b, t = tokens.shape
        probs = torch.zeros(b, t, len(self.tokenizer))
        for r in range(b):
            alone = int(tokens[r, 2]) == self.mask_id
            guess = [("q", 0.6), ("a", 0.3)] if alone else [("a", 0.9), ("q", 0.05)]
            probs[r, 1] = self.probs(guess)
            probs[r, 2] = self.probs([("b", 0.5), ("e", 0.2)])
            probs[r, 3] = self.probs([("c", 0.7), ("f", 0.2)])
            probs[r, 4] = self.probs([("d", 0.5), ("g", 0.3)])
            probs[r, 0] = self.probs([])
        return BackboneOutput(logits=probs.log(), hidden=tokens[..., None].float())


class QHead:
    """Error probability 0.8 at a `q`, 0.1 elsewhere (reads the token id in the hidden state)."""

    def __init__(self, q_id: int) -> None:
        self.q_id = q_id

    def __call__(self, hidden, attention_mask=None):
        err = torch.where(hidden[..., 0] == self.q_id, 0.8, 0.1)  # (b, T)
        return torch.log((1 - err) / err)  # logit of "correct"


def ids(bb: Backbone, chars: str) -> list[int]:
    return [bb.mask_id if c == "_" else bb.tokenizer.convert_tokens_to_ids(c) for c in chars]


def lettered(bb: Backbone, record: dict) -> dict:
    """`record` with its token ids as their characters (`_` for the mask), to read by eye."""
    vocab = range(len(bb.tokenizer))
    char = {i: "_" if i == bb.mask_id else bb.tokenizer.decode([i]) for i in vocab}
    out = dict(record, canvas="".join(char[i] for i in record["canvas"]))
    for key in ("commits", "remasks"):
        out[key] = [
            dict(e, token=char[e["token"]], top=[[char[i], p] for i, p in e["top"]])
            for e in record[key]
        ]
    return out


FULL = {"kind": "full", "computed": 5}  # no cache: every forward computes prompt + response


def hand_worked():
    """The decode of the hand-worked case: backbone, decoder, recorder, result."""
    bb = GuessingBackbone()
    # BackPlay on every step (stride 1), tau 0.5, one remask at most, window: this block and
    # the one before; 2 blocks of 2 positions, one token per step
    policy = backplay_policy(max_remask=1, block_buffer=1)
    dec = Decoder(policy, gen_length=4, block_length=2, tokens_per_step=1, stop=stop_rule())
    trace = TraceRecorder(top=2)
    prompt = torch.tensor([ids(bb, "x")])
    out = dec.generate(bb, prompt, head=QHead(ids(bb, "q")[0]), trace=trace)
    return bb, dec, trace, out


def test_two_blocks_one_remask_by_hand():
    bb, _, trace, out = hand_worked()
    assert bb.tokenizer.decode(out.tokens[0]) == "abcd"
    expected = [
        # step 0: q (0.6) beats b (0.5): committed first, without context; nothing to judge yet
        {"row": 0, "step": 0, "nfe": 1, "block": 0, "block_span": [0, 2], "in_block": 0,
         "judged": True, "final_check": False, "forward": FULL,
         "commits": [{"pos": 0, "token": "q", "conf": 0.6, "top": [["q", 0.6], ["a", 0.3]]}],
         "remasks": [], "edits": [], "scores": [], "canvas": "q___"},
        # step 1: the head judges q (error 0.8 > 0.5): back under the mask; b is committed
        {"row": 0, "step": 1, "nfe": 2, "block": 0, "block_span": [0, 2], "in_block": 1,
         "judged": True, "final_check": False, "forward": FULL,
         "commits": [{"pos": 1, "token": "b", "conf": 0.5, "top": [["b", 0.5], ["e", 0.2]]}],
         "remasks": [{"pos": 0, "token": "q", "score": 0.8, "conf": 0.6,
                      "top": [["q", 0.6], ["a", 0.3]]}],
         "edits": [], "scores": [[0, 0.8]], "canvas": "_b__"},
        # step 2: with b visible, position 0 becomes a (0.9); b is judged fine (0.1)
        {"row": 0, "step": 2, "nfe": 3, "block": 0, "block_span": [0, 2], "in_block": 2,
         "judged": True, "final_check": False, "forward": FULL,
         "commits": [{"pos": 0, "token": "a", "conf": 0.9, "top": [["a", 0.9], ["q", 0.05]]}],
         "remasks": [], "edits": [], "scores": [[1, 0.1]], "canvas": "ab__"},
        # block 1: its window holds block 0, judged fine (0.1)
        {"row": 0, "step": 3, "nfe": 4, "block": 1, "block_span": [2, 4], "in_block": 0,
         "judged": True, "final_check": False, "forward": FULL,
         "commits": [{"pos": 2, "token": "c", "conf": 0.7, "top": [["c", 0.7], ["f", 0.2]]}],
         "remasks": [], "edits": [], "scores": [[0, 0.1], [1, 0.1]], "canvas": "abc_"},
        {"row": 0, "step": 4, "nfe": 5, "block": 1, "block_span": [2, 4], "in_block": 1,
         "judged": True, "final_check": False, "forward": FULL,
         "commits": [{"pos": 3, "token": "d", "conf": 0.5, "top": [["d", 0.5], ["g", 0.3]]}],
         "remasks": [], "edits": [], "scores": [[0, 0.1], [1, 0.1], [2, 0.1]], "canvas": "abcd"},
    ]  # fmt: skip
    assert [lettered(bb, r) for r in trace.records] == expected
    assert trace.results == {0: {"tokens": ids(bb, "abcd"), "nfe": 5, "remasks": 1, "edits": 0}}
    assert out.nfe.tolist() == [5] and out.remasks.tolist() == [1]


def test_no_trace_is_the_default_and_records_nothing():
    bb = GuessingBackbone()
    dec = Decoder(backplay_policy(max_remask=1, block_buffer=1), 4, 2, 1, stop=stop_rule())
    prompt, head = torch.tensor([ids(bb, "x")]), QHead(ids(bb, "q")[0])
    plain = dec.generate(bb, prompt, head=head)
    noop = dec.generate(bb, prompt, head=head, trace=NoTrace())
    assert torch.equal(plain.tokens, noop.tokens) and torch.equal(plain.nfe, noop.nfe)
    assert NoTrace().head(head) is head  # the remasker calls the head itself


@pytest.mark.parametrize("cache", [None, DualCache(), LazyWindowCache(readers=0.1)])
def test_tracing_changes_no_token(cache):
    bb = small_tiny(0)
    gen = torch.Generator().manual_seed(3)
    prompt = torch.randint(3, 20, (3, 5), generator=gen)
    policy = backplay_policy(threshold=0.3, max_remask=2, block_buffer=1, memory_steps=2)
    dec = Decoder(policy, 16, 4, tokens_per_step=2, cache=cache, stop=stop_rule())
    w = torch.randn(32, generator=gen)

    def head(hidden, attention_mask=None):  # a random linear head: a row's own scores
        return hidden @ w  # (b, T)

    plain = dec.generate(bb, prompt, head=head)
    trace = TraceRecorder(rows=[1])
    traced = dec.generate(bb, prompt, head=head, trace=trace)
    assert torch.equal(plain.tokens, traced.tokens) and torch.equal(plain.nfe, traced.nfe)
    assert {r["row"] for r in trace.records} == {1}
    steps = trace.records
    assert len(steps) == plain.nfe[1].item()
    assert steps[-1]["canvas"] == plain.tokens[1].tolist()
    assert sum(len(r["remasks"]) for r in steps) == plain.remasks[1].item()
    # every commit's confidence is its top proposal's probability (argmax decoding)
    for r in steps:
        for c in r["commits"]:
            assert c["top"][0][0] == c["token"]
            assert math.isclose(c["conf"], c["top"][0][1], abs_tol=1e-4)
    kinds = {r["forward"]["kind"] for r in steps}
    if cache is None:
        assert kinds == {"full"}
    else:
        assert "record" in kinds and kinds & {"span", "positions"}


def test_cached_forward_names_its_positions():
    bb = small_tiny(1)
    prompt = torch.randint(3, 20, (1, 5), generator=torch.Generator().manual_seed(0))
    dec = Decoder(NoRemask(), 8, 4, tokens_per_step=1, cache=DualCache(), stop=stop_rule(False))
    trace = TraceRecorder()
    dec.generate(bb, prompt, trace=trace)
    forwards = [(r["step"], r["forward"]) for r in trace.records]
    # each block records at its first step; the dual cache then computes the block alone
    assert forwards[:2] == [
        (0, {"kind": "record", "computed": 13}),
        (1, {"kind": "span", "lo": 0, "hi": 4, "computed": 4}),
    ]
    assert forwards[4] == (4, {"kind": "record", "computed": 13})
    assert forwards[5] == (5, {"kind": "span", "lo": 4, "hi": 8, "computed": 4})


def test_the_rows_a_page_and_a_figure_draw_of_it(tmp_path):
    bb, dec, trace, _ = hand_worked()
    header = decode_header(dec, bb, "x", problem="p", answer="abcd")
    result = trace.results[0] | {"completion": "abcd", "extracted": "abcd", "correct": True}
    records = trace_records("backplay", header, trace.steps_of(0), result, bb.tokenizer)
    (got,) = read_trace(records)
    assert [r.label for r in got.rows] == [
        "s0 b0 NFE 1 judged", "s1 b0 NFE 2 judged", "s2 b0 NFE 3 judged", "s3 b1 NFE 4 judged",
        "s4 b1 NFE 5 judged", "result",
    ]  # fmt: skip
    kinds = [[c.kind for c in r.cells] for r in got.rows]
    assert kinds == [
        ["commit", "mask", "mask", "mask"],
        ["remask", "commit", "mask", "mask"],
        ["commit", "kept", "mask", "mask"],
        ["kept", "kept", "commit", "mask"],
        ["kept", "kept", "kept", "commit"],
        ["kept", "kept", "kept", "kept"],
    ]
    q = got.rows[1].cells[0]  # the remasked guess: its text, its score, what replaced it
    assert (q.text, q.score, q.born) == ("q", 0.8, None)
    assert "remasked at step 1: 'q', head error 0.800" in q.tip
    assert "replaced by 'a' at step 2" in q.tip
    assert [c.born for c in got.rows[-1].cells] == [2, 1, 3, 4]  # the step of each final token
    paths = write_trace(tmp_path, "trace", records, "hand-worked")
    assert [p.name for p in paths] == ["trace.jsonl", "trace.html", "trace.png"]
    assert read_records(paths[0]) == records
    page = paths[1].read_text()
    assert page.count('class="step"') == 5 and page.count('class="step final"') == 1
    assert not any(ref in page for ref in ("http", "<link", " src=", "@import"))  # all inline
    assert paths[2].stat().st_size > 0


def test_an_edit_is_recorded_with_the_token_it_replaced():
    # step 0 commits a, b; step 1 commits x, d; step 2 edits x -> c (logit 10); step 3 settles
    bb = EditTableBackbone({"x": list("abxd")}, {"x": [4.0, 3, 2, 1]}, {"x": list("abcd")})
    dec = Decoder(NoRemask(), 4, 4, tokens_per_step=2, editor=ThresholdEditor(0.9))
    trace = TraceRecorder(top=1)
    out = dec.generate(bb, torch.tensor([ids(bb, "x")]), trace=trace)
    assert bb.tokenizer.decode(out.tokens[0]) == "abcd"
    edits = [(r["step"], lettered_edits(bb, r["edits"])) for r in trace.records]
    assert edits == [(0, []), (1, []), (2, [(2, "x", "c")]), (3, [])]
    (edit,) = trace.records[2]["edits"]
    assert edit["top"][0][0] == edit["new"] and edit["conf"] > 0.9


def lettered_edits(bb: Backbone, edits: list[dict]) -> list[tuple[int, str, str]]:
    return [
        (e["pos"], bb.tokenizer.decode([e["old"]]), bb.tokenizer.decode([e["new"]])) for e in edits
    ]
