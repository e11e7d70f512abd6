"""Native LLaDA and Dream compute what the published modeling code computes (golden outputs).

The oracle is `../shared/fixtures/real_backbones/` (README there): tiny random checkpoints in
the published layout and the published code's own logits and hidden states, for an unpadded
call and a left-padded one (each model called as its own generate() calls it). Compared at real
tokens (values at padding carry no meaning).
"""

from __future__ import annotations

import json

import pytest
import torch
from hydra.utils import instantiate
from safetensors.torch import load_file

from backplay_exp.backbones.dream import DreamBackbone, shift_to_positions
from backplay_exp.backbones.llada import LLaDABackbone
from backplay_exp.transformer.model import DLMTransformer
from tests.backbones.conftest import native_overrides, real_fixture

KINDS = ["llada", "dream"]
CLASSES = {"llada": LLaDABackbone, "dream": DreamBackbone}
CALLS = ["nomask", "masked"]  # golden entries: no padding information / the padded call
TOLERANCE = 1e-5  # the bar for float32


def golden(kind: str) -> dict[str, torch.Tensor]:
    return load_file(str(real_fixture(kind, "golden.safetensors")))


def build(compose_cfg, kind: str, *extra: str):
    cfg = compose_cfg(*native_overrides(kind), *extra, tiny=False)
    return instantiate(cfg.backbone).eval()


def max_diff_at_real_tokens(a: torch.Tensor, b: torch.Tensor, real: torch.Tensor) -> float:
    """max |a - b| over positions where `real` (B, L) is True; a, b are (B, L, ...)."""
    return (a - b).abs()[real].max().item()


@pytest.mark.parametrize("call", CALLS)
@pytest.mark.parametrize("kind", KINDS)
def test_logits_and_every_hidden_state_match_the_published_code(compose_cfg, kind, call):
    gold = golden(kind)
    ids, real = gold["input_ids"], gold["attention_mask"].bool()
    mask = real if call == "masked" else None
    backbone = build(compose_cfg, kind)
    assert backbone.n_layers + 1 == gold[f"hidden_states_{call}"].shape[0]
    expected = gold[f"logits_{call}"]
    compared = real
    if kind == "dream":  # aligned[:, i] = raw[:, i - 1]: compare where both are real tokens
        expected, compared = shift_to_positions(expected), real & shift_to_positions(real)
    with torch.no_grad():
        out = backbone(ids, mask)
    diff = max_diff_at_real_tokens(out.logits, expected, compared)
    assert diff <= TOLERANCE, f"logits differ by {diff}"
    # every entry of [embeddings, block_1, ..., final_norm(block_N)], through the tap
    if kind == "dream":
        backbone.shift_hidden = False  # compare the raw states; the shift is tested below
    for tap, expected in enumerate(gold[f"hidden_states_{call}"]):
        backbone.tap_layer = tap
        with torch.no_grad():
            hidden, early = backbone(ids, mask).hidden, backbone.hidden_states(ids, mask)
        diff = max_diff_at_real_tokens(hidden, expected, real)
        assert diff <= TOLERANCE, f"hidden state {tap} differs by {diff}"
        torch.testing.assert_close(early, hidden, rtol=0, atol=0)  # the early stop is exact


def test_dream_outputs_are_realigned_to_positions(compose_cfg):
    gold = golden("dream")
    backbone = build(compose_cfg, "dream")
    assert backbone.shift_hidden and backbone.tap_layer == -2
    with torch.no_grad():
        out = backbone(gold["input_ids"])
    raw_hidden = gold["hidden_states_nomask"][-2]
    # aligned[:, i] = raw[:, i - 1] for i >= 1 (position 0 copies raw[:, 0])
    torch.testing.assert_close(out.hidden[:, 1:], raw_hidden[:, :-1], atol=TOLERANCE, rtol=0)
    torch.testing.assert_close(out.hidden[:, 0], raw_hidden[:, 0], atol=TOLERANCE, rtol=0)
    torch.testing.assert_close(
        out.logits[:, 1:], gold["logits_nomask"][:, :-1], atol=TOLERANCE, rtol=0
    )


@pytest.mark.parametrize("kind", KINDS)
def test_left_padding_does_not_change_a_row(compose_cfg, kind):
    # LLaDA keeps absolute positions under left padding, Dream counts them over real tokens;
    # rotary scores depend only on position differences, so both leave a row unchanged
    gold = golden(kind)
    ids, real = gold["input_ids"], gold["attention_mask"].bool()
    backbone = build(compose_cfg, kind)
    with torch.no_grad():
        padded = backbone(ids, real).logits
        row = backbone(ids[2:, 7:]).logits  # row 2 without its 7 pads
    shift = 1 if kind == "dream" else 0  # Dream's first real position reads the pad before it
    assert (padded[2, 7 + shift :] - row[0, shift:]).abs().max().item() <= TOLERANCE


@pytest.mark.parametrize("kind", KINDS)
def test_bf16_load_stays_close_to_float32(compose_cfg, kind):
    gold = golden(kind)
    ids, real = gold["input_ids"], gold["attention_mask"].bool()
    fp32 = build(compose_cfg, kind)
    bf16 = instantiate(compose_cfg(*native_overrides(kind, dtype="bfloat16"), tiny=False).backbone)
    assert {p.dtype for p in bf16.parameters()} == {torch.bfloat16}
    with torch.no_grad():
        a, b = fp32(ids, real).logits, bf16.eval()(ids, real).logits
    assert b.dtype == torch.bfloat16
    diff = max_diff_at_real_tokens(a, b.float(), real)
    assert 0 < diff <= 5e-2, f"bf16 logits differ from float32 by {diff}"


@pytest.mark.parametrize(("kind", "params"), [("llada", 8_015_581_184), ("dream", 7_615_616_512)])
def test_full_size_configs_build_on_meta_with_the_published_parameter_count(kind, params):
    name = {"llada": "llada_8b", "dream": "dream_7b"}[kind]
    published = json.loads(real_fixture("configs", f"{name}.config.json").read_text())
    with torch.device("meta"):
        model = DLMTransformer(CLASSES[kind].transformer_config(published))
    assert sum(p.numel() for p in model.parameters()) == params
    assert all(p.is_meta for p in model.parameters())  # no weight memory allocated


@pytest.mark.parametrize("kind", KINDS)
def test_every_published_weight_name_maps_both_ways(kind):
    index = json.loads(real_fixture(kind, "model.safetensors.index.json").read_text())
    keymap = CLASSES[kind].keymap
    published = set(index["weight_map"])
    native = {keymap.to_native(k) for k in published}
    assert None not in native
    assert {keymap.to_published(k) for k in native} == published
    config = json.loads(real_fixture(kind, "config.json").read_text())
    with torch.device("meta"):
        model = DLMTransformer(CLASSES[kind].transformer_config(config))
    assert set(model.state_dict()) == native
