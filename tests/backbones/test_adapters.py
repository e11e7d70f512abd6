"""The Hugging Face masked-LM adapter: shapes, the tapped state from one pass, save/load, errors.

LLaDA and Dream run natively (tests/backbones/test_native_*.py).
"""

from __future__ import annotations

import pytest
import torch
from hydra.utils import instantiate

from backplay_exp.backbones.base import load_backbone
from backplay_exp.data.collate import encode_prompts
from tests.backbones.conftest import LAYERS, backbone_overrides

KINDS = ["bert", "modernbert"]


@pytest.fixture
def build(compose_cfg, model_dirs):
    def _build(kind: str, *extra: str):
        cfg = compose_cfg(*backbone_overrides(kind, model_dirs[kind]), *extra, tiny=False)
        torch.manual_seed(0)
        return instantiate(cfg.backbone).eval(), cfg

    return _build


def raw_outputs(backbone, tokens):
    """What the wrapped model itself returns (no adapter logic)."""
    out = backbone.model(input_ids=tokens, output_hidden_states=True)
    return out.logits, out.hidden_states


def count_calls(module):
    calls = []
    module.register_forward_hook(lambda *_: calls.append(1))
    return calls


@pytest.mark.parametrize("kind", KINDS)
def test_one_forward_gives_logits_and_the_penultimate_block(build, kind):
    backbone, _ = build(kind)
    tokens = torch.randint(3, len(backbone.tokenizer), (2, 7))
    calls = count_calls(backbone.model)
    with torch.no_grad():
        out = backbone(tokens)
        raw_logits, raw_states = raw_outputs(backbone, tokens)
    assert len(calls) == 2  # ours + the reference call above: the adapter made exactly one
    vocab = len(backbone.tokenizer)
    assert out.logits.shape == (2, 7, vocab)
    assert out.hidden.shape == (2, 7, backbone.hidden_size) == (2, 7, 16)
    assert backbone.n_layers == LAYERS and len(raw_states) == LAYERS + 1
    expect_logits, expect_hidden = raw_logits, raw_states[LAYERS - 1]  # block N-1's output
    torch.testing.assert_close(out.logits, expect_logits)
    torch.testing.assert_close(out.hidden, expect_hidden)


@pytest.mark.parametrize("kind", KINDS)
def test_save_load_round_trip(build, kind, tmp_path):
    backbone, cfg = build(kind)
    tokens = torch.randint(3, len(backbone.tokenizer), (2, 6))
    backbone.save(tmp_path / "bb", cfg.backbone)
    assert (tmp_path / "bb" / "hf" / "config.json").exists()
    assert (tmp_path / "bb" / "tokenizer").is_dir()
    loaded = load_backbone(tmp_path / "bb").eval()
    assert type(loaded) is type(backbone)
    with torch.no_grad():
        a, b = backbone(tokens), loaded(tokens)
    torch.testing.assert_close(a.logits, b.logits, rtol=0, atol=0)
    torch.testing.assert_close(a.hidden, b.hidden, rtol=0, atol=0)
    assert (loaded.mask_id, loaded.eos_id) == (backbone.mask_id, backbone.eos_id)
    # readout overrides (what tasks pass) apply on reload
    last = load_backbone(tmp_path / "bb", {"tap_layer": -1})
    assert last.tap_layer == -1


@pytest.mark.parametrize("kind", ["bert"])
def test_bf16_weights_and_outputs(build, kind):
    backbone, _ = build(kind, "backbone.dtype=bfloat16")
    assert {p.dtype for p in backbone.parameters()} == {torch.bfloat16}
    out = backbone(torch.randint(3, 50, (1, 5)))
    assert out.logits.dtype == out.hidden.dtype == torch.bfloat16


@pytest.mark.parametrize("kind", ["bert", "modernbert"])
def test_left_padding_does_not_change_a_row(build, kind):
    backbone, _ = build(kind)
    ids, mask = encode_prompts(backbone.tokenizer, ["12+3=", "7+1"])
    assert mask[1].tolist() == [False, False, True, True, True]
    with torch.no_grad():
        batch = backbone(ids, mask)
        alone = backbone(ids[1:, 2:])  # the same row without its padding
    torch.testing.assert_close(batch.logits[1, 2:], alone.logits[0], atol=1e-5, rtol=1e-4)


def test_tap_layer_is_checked_against_the_depth(build):
    with pytest.raises(Exception, match=r"tap_layer=4 is outside \[-4, 3\]"):
        build("bert", "backbone.tap_layer=4")
    backbone, _ = build("bert", "backbone.tap_layer=0")  # 0 = the embeddings, like tiny
    tokens = torch.randint(3, 50, (1, 4))
    with torch.no_grad():
        torch.testing.assert_close(backbone(tokens).hidden, raw_outputs(backbone, tokens)[1][0])


def test_special_ids_are_checked(build):
    with pytest.raises(Exception, match="mask_id=5 but the tokenizer's mask token"):
        build("bert", "backbone.mask_id=5")
    with pytest.raises(Exception, match=r"eos_token='\[SEP\]' is not in the vocabulary"):
        build("bert", "backbone.eos_token='[SEP]'")
    backbone, _ = build("bert", "backbone.eot_token='<|pad|>'")
    assert (backbone.mask_id, backbone.eos_id, backbone.eot_id) == (2, 1, 0)


def test_gradient_checkpointing_knob(build):
    backbone, _ = build("bert", "backbone.gradient_checkpointing=true")
    assert backbone.model.is_activation_checkpointing
    backbone.train()
    backbone(torch.randint(3, 50, (2, 5))).logits.sum().backward()
    assert backbone.model.bert.embeddings.word_embeddings.weight.grad is not None
