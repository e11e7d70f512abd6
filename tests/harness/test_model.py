"""The `backplay` lm-eval model on the tiny backbone: batches, canvases, stop strings, counts."""

from __future__ import annotations

import logging

import pytest
import torch
from hydra.utils import instantiate

from backplay_exp.harness.generation import batches_by_canvas, canvas_length, cut_at_stops
from backplay_exp.harness.model import ROLLING, BackplayLM
from backplay_exp.harness.stats import requests_stats
from tests.harness.conftest import choice, generation


def test_canvas_is_max_gen_toks_rounded_up_to_whole_blocks():
    assert canvas_length(None, 32, 16) == 32  # no budget: the configured gen_length
    assert canvas_length(16, 32, 16) == 16
    assert canvas_length(17, 32, 16) == 32
    assert canvas_length(1, 32, 8) == 8
    with pytest.raises(ValueError, match="max_gen_toks"):
        canvas_length(0, 32, 16)


def test_stop_strings_cut_at_the_earliest():
    assert cut_at_stops("a\n\nQuestion: b", ["Question:", "\n\n"]) == "a"
    assert cut_at_stops("abc", ["x", ""]) == "abc"


def test_batches_keep_order_within_a_canvas():
    assert batches_by_canvas([32, 16, 32, 32], 2) == [(32, 0, [0, 2]), (32, 1, [3]), (16, 0, [1])]


@pytest.fixture
def model(compose_cfg):
    cfg = compose_cfg("sampler.tokens_per_step=4")
    torch.manual_seed(0)
    backbone = instantiate(cfg.backbone).eval()

    def make_decoder(gen_length):
        extra = {} if gen_length is None else {"gen_length": gen_length}
        return instantiate(cfg.sampler, remasker=instantiate(cfg.remask), **extra)

    return BackplayLM(backbone, make_decoder, batch_size=2, mc_num=4, mc_rows_per_pass=8)


def test_generate_until_batches_requests_and_records_counts(model, monkeypatch, caplog):
    calls = []
    generate = type(model.decoder).generate

    def spy(self, backbone, ids, *args, **kwargs):
        calls.append((self.gen_length, ids.shape[0]))
        return generate(self, backbone, ids, *args, **kwargs)

    monkeypatch.setattr(type(model.decoder), "generate", spy)
    requests = [
        generation("1+2=?", 0, until=[]),
        generation("2+2=?", 1, until=[], max_gen_toks=20),  # 2 blocks of 16 = the default 32
        generation("3+2=?", 2, until=[], max_gen_toks=9),  # one block of 16
    ]
    with caplog.at_level(logging.INFO, logger="backplay_exp.harness.model"):
        texts = model.generate_until(requests, disable_tqdm=True)
    assert calls == [(32, 2), (16, 1)]  # two requests in one batch, not one at a time
    assert len(texts) == 3 and all(isinstance(t, str) for t in texts)
    assert "max_gen_toks=9 -> a canvas of 16 tokens (1 blocks of 16)" in caplog.text
    stats = requests_stats(model.stats)
    assert set(stats) == {("t", 0), ("t", 1), ("t", 2)}
    assert all(1 <= s["nfe"] <= 32 // 4 + 4 for s in stats.values())  # k=4: ~canvas / 4 steps
    assert stats[("t", 2)]["tokens"] <= 16


def test_until_is_applied_to_the_decoded_text(model):
    [free] = model.generate_until([generation("1+2=?", until=[])], disable_tqdm=True)
    assert len(free) > 1
    stop = free[1]  # the second character the model writes
    [cut] = model.generate_until([generation("1+2=?", until=[stop])], disable_tqdm=True)
    assert cut == free[: free.index(stop)]


def test_loglikelihood_scores_each_choice_and_counts_its_passes(model):
    requests = [choice("1+2=?", "3"), choice("1+2=?", "4", idx=1), choice("1+2=?", " 3", 1)]
    out = model.loglikelihood(requests, disable_tqdm=True)
    assert len(out) == 3 and all(ll < 0 and greedy is False for ll, greedy in out)
    stats = requests_stats(model.stats)
    assert stats[("t", 0)]["nfe"] == 2 * 4 and stats[("t", 0)]["requests"] == 2
    model.loglikelihood(requests[2:], disable_tqdm=True)  # a rank's padding copy: not counted
    assert requests_stats(model.stats)[("t", 1)]["requests"] == 1


def test_loglikelihood_rolling_says_why_not(model):
    with pytest.raises(NotImplementedError) as err:
        model.loglikelihood_rolling([])
    assert str(err.value) == ROLLING and "\n" not in ROLLING


def test_chat_template_is_the_tokenizers(model):
    chat = [{"role": "user", "content": "hi"}]
    with pytest.raises(ValueError, match="no chat template"):
        model.apply_chat_template(chat)
    model.backbone.tokenizer.chat_template = (
        "{% for m in messages %}<{{ m.role }}>{{ m.content }}{% endfor %}"
        "{% if add_generation_prompt %}<assistant>{% endif %}"
    )
    assert model.apply_chat_template(chat) == "<user>hi<assistant>"
    assert model.apply_chat_template(chat, add_generation_prompt=False) == "<user>hi"
    assert model.chat_template() == model.backbone.tokenizer.chat_template
    assert model.tokenizer_name
