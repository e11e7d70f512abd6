"""SMDM-1B: the converted model reproduces the published SMDM code; the 1B config has its size.

The oracle is `../shared/fixtures/real_backbones/smdm/` (README there): a tiny random
`TransEncoder` of the published SMDM code (state dict with its own names) and the outputs it
computed in float32. The tests that need it skip when `../shared` is absent.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate
from safetensors.torch import load_file, save_file
from tokenizers import Tokenizer, models
from transformers import PreTrainedTokenizerFast

from backplay_exp.backbones.base import load_backbone
from backplay_exp.backbones.smdm import (
    SMDMBackbone,
    convert_smdm_state_dict,
    smdm_tokenizer,
    split_fused_attention,
)
from backplay_exp.transformer.rotary import Rotary

# ../shared/fixtures relative to the project root (never copied into the repo)
FIXTURE = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "real_backbones" / "smdm"
# SMDM's two facts (the published code): RMSNorm eps 1e-5 and bf16-rounded rotary tables
SMDM_OPTIONS = {"norm_eps": 1e-5, "rope_table_dtype": "bfloat16", "mask_output_row": False}
TINY_OPTIONS = {
    "norm_eps": 1e-6,
    "rope_table_dtype": None,
    "mask_output_row": True,
}  # the in-repo transformer's own
TOL = 1e-5  # issue 20: max |difference| from the published code's float32 outputs


def fixture_file(name: str) -> Path:
    """A file of the SMDM fixture, or skip the test when `../shared` is not there."""
    path = FIXTURE / name
    if not path.exists():
        pytest.skip(f"SMDM fixture not available at {path}")
    return path


def word_tokenizer(n: int) -> PreTrainedTokenizerFast:
    vocab = {"</s>": 0, **{f"w{i}": i for i in range(1, n)}}
    return PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer(models.WordLevel(vocab, unk_token="</s>")), eos_token="</s>"
    )


def smdm_word_tokenizer(tmp_path: Path, vocab: int) -> PreTrainedTokenizerFast:
    """A `vocab`-id word-level tokenizer plus SMDM's mask token (id `vocab`), as the config does."""
    word_tokenizer(vocab).save_pretrained(tmp_path / "llama_tok")
    return smdm_tokenizer(str(tmp_path / "llama_tok"), "<|mdm_mask|>")


@pytest.fixture
def fixture_config() -> dict:
    return json.loads(fixture_file("config.json").read_text())


@pytest.fixture
def golden() -> dict[str, torch.Tensor]:
    return load_file(str(fixture_file("golden.safetensors")))


@pytest.fixture
def published_state() -> dict[str, torch.Tensor]:
    return load_file(str(fixture_file("model.safetensors")))


def backbone_kwargs(config: dict, **options) -> dict:
    """`SMDMBackbone` arguments of the fixture's lit-gpt config (no tokenizer, no weights)."""
    assert config["n_query_groups"] == config["n_head"] and config["rotary_percentage"] == 1.0
    assert config["_mlp_class"] == "LLaMAMLP" and not config["bias"]
    return {
        "d_model": config["n_embd"],
        "n_layers": config["n_layer"],
        "n_heads": config["n_head"],
        "mlp_ratio": config["intermediate_size"] / config["n_embd"],
        "conv_kernel": 0,
        "max_len": config["block_size"],
        "learned_pos": False,
        "rope_base": 10000.0,  # build_rope_cache's default base
        "init_std": 0.02,
        "tap_layer": -2,
        **options,
    }


def fixture_model(tmp_path, config, state, **options) -> SMDMBackbone:
    """The fixture's weights converted into an SMDM backbone (float32, eval mode)."""
    tokenizer = smdm_word_tokenizer(tmp_path, config["vocab_size"])
    model = SMDMBackbone(init_from=None, tokenizer=tokenizer, **backbone_kwargs(config, **options))
    heads = model.model.cfg.n_heads
    converted = convert_smdm_state_dict(state, heads, len(tokenizer), model.mask_output_row)
    model.model.load_state_dict(converted)
    return model.eval()


def max_diffs(model, golden) -> tuple[float, list[float]]:
    """Max |difference| of the logits and of [embeddings, block 1, ...] from the golden ones."""
    tokens = golden["input_ids"]  # (3, 24), positions 14.. are the mask id
    with torch.no_grad():
        logits = model(tokens).logits  # (B, L, V + 1): the last column is the mask's
        states = model._states(tokens, None, model.n_layers)  # [embeddings, block_1, ...]
    vocab = golden["logits"].shape[-1]  # the published lm_head has no mask row
    logit_diff = (logits[..., :vocab] - golden["logits"]).abs().max().item()
    # golden hidden_states (n_blocks + 1, B, L, D), before the final norm (no final-norm entry)
    golden_states = golden["hidden_states"].unbind(0)
    state_diffs = [(s - g).abs().max().item() for s, g in zip(states, golden_states, strict=True)]
    return logit_diff, state_diffs


def test_mask_token_goes_right_after_the_vocabulary(tmp_path):
    tokenizer = smdm_word_tokenizer(tmp_path, 40)
    assert tokenizer.mask_token_id == 40 and len(tokenizer) == 41


def test_the_fused_attention_is_split_head_by_head():
    # 2 heads of dim 2, width 4: published rows are [q_0, k_0, v_0, q_1, k_1, v_1] (2 rows each)
    fused = torch.arange(12.0).repeat_interleave(4).view(12, 4)  # row r holds the value r
    split = split_fused_attention({"transformer.h.0.attn.attn.weight": fused}, n_heads=2)
    rows = {k.split(".")[-2]: v[:, 0].tolist() for k, v in split.items()}
    assert rows == {"q": [0, 1, 6, 7], "k": [2, 3, 8, 9], "v": [4, 5, 10, 11]}


def test_converted_weights_reproduce_the_published_outputs(
    tmp_path, fixture_config, published_state, golden
):
    model = fixture_model(tmp_path, fixture_config, published_state, **SMDM_OPTIONS)
    logit_diff, state_diffs = max_diffs(model, golden)
    assert logit_diff <= TOL, logit_diff  # measured 1.7e-6 (CPU, float32)
    assert state_diffs[0] == 0  # the embedding output is a lookup of the same row
    assert max(state_diffs) <= TOL, state_diffs  # measured 5.4e-7 (block 1), 9.5e-7 (block 2)
    with torch.no_grad():
        mask_logit = model(golden["input_ids"]).logits[..., -1]
    assert (mask_logit == 0).all()  # no published output row for the mask: its logit is 0


@pytest.mark.parametrize(
    "options",
    [
        TINY_OPTIONS,  # measured 1.0e-3
        {**SMDM_OPTIONS, "norm_eps": 1e-6},  # tiny's eps only: 4.6e-4
        {**SMDM_OPTIONS, "rope_table_dtype": None},  # float32 rotary tables only: 9.2e-4
    ],
    ids=["tiny_defaults", "eps_1e-6", "fp32_rope"],
)
def test_without_smdm_options_the_outputs_differ(
    tmp_path, fixture_config, published_state, golden, options
):
    # each of the two options matters: without it the golden test above would fail
    model = fixture_model(tmp_path, fixture_config, published_state, **options)
    logit_diff, _ = max_diffs(model, golden)
    assert logit_diff > 1e-4, logit_diff


def test_lit_gpt_mlp_names_convert_the_same(fixture_config, published_state):
    # the fixture has xformers' SwiGLU names (w1, w2, w3); lit-gpt's LLaMAMLP calls the same
    # matrices fc_1 (gate), fc_2 (up), proj (down)
    renamed = dict(published_state)
    for old, new in (("swiglu.w1", "fc_1"), ("swiglu.w2", "fc_2"), ("swiglu.w3", "proj")):
        renamed = {k.replace(f"mlp.{old}.", f"mlp.{new}."): v for k, v in renamed.items()}
    assert renamed.keys() != published_state.keys()
    heads, vocab = fixture_config["n_head"], fixture_config["vocab_size"] + 1
    want = convert_smdm_state_dict(published_state, heads, vocab)
    got = convert_smdm_state_dict(renamed, heads, vocab)
    assert want.keys() == got.keys() and all(torch.equal(got[k], want[k]) for k in want)


def test_init_from_checkpoint_then_save_load_without_it(
    tmp_path, fixture_config, published_state, golden
):
    ckpt = tmp_path / "mdm-tiny.safetensors"  # a `{"model": ...}`-style prefix is stripped
    save_file({f"model.{k}": v for k, v in published_state.items()}, str(ckpt))
    tokenizer = smdm_word_tokenizer(tmp_path, fixture_config["vocab_size"])
    kwargs = backbone_kwargs(fixture_config, **SMDM_OPTIONS)
    ours = SMDMBackbone(init_from=str(ckpt), tokenizer=tokenizer, **kwargs).eval()
    logit_diff, state_diffs = max_diffs(ours, golden)
    assert logit_diff <= TOL and max(state_diffs) <= TOL
    cfg = {
        "_target_": "backplay_exp.backbones.smdm.SMDMBackbone",
        "init_from": str(ckpt),
        "tokenizer": {"_target_": "no.such.builder"},
        **kwargs,
    }
    ours.save(tmp_path / "bb", cfg)
    ckpt.unlink()  # reloading must not read the SMDM checkpoint (nor build the tokenizer)
    loaded = load_backbone(tmp_path / "bb").eval()
    assert loaded.model.cfg.table_dtype == torch.bfloat16 and loaded.model.norm.eps == 1e-5
    assert not loaded.mask_output_row
    tokens = golden["input_ids"]
    with torch.no_grad():
        torch.testing.assert_close(loaded(tokens).logits, ours(tokens).logits, rtol=0, atol=0)


def test_a_mask_output_row_gets_a_zero_row(tmp_path, fixture_config, published_state, golden):
    # tiny's default: the output layer has a row for the mask id; converting adds a zero one,
    # which computes the same logits as SMDM's layout (the mask's logit a constant 0)
    options = {**SMDM_OPTIONS, "mask_output_row": True}
    with_row = fixture_model(tmp_path, fixture_config, published_state, **options)
    without = fixture_model(tmp_path, fixture_config, published_state, **SMDM_OPTIONS)
    rows, rows_without = with_row.model.lm_head.weight, without.model.lm_head.weight
    assert rows.shape[0] == rows_without.shape[0] + 1 and (rows[-1] == 0).all()
    tokens = golden["input_ids"]
    with torch.no_grad():
        torch.testing.assert_close(with_row(tokens).logits, without(tokens).logits)


def test_no_mask_row_needs_the_mask_last(tmp_path):
    tokenizer = word_tokenizer(12)
    tokenizer.add_special_tokens({"mask_token": "w3"})  # an id inside the vocabulary
    with pytest.raises(ValueError, match="mask to be the last id"):
        SMDMBackbone(
            init_from=None,
            tokenizer=tokenizer,
            **backbone_kwargs(
                {
                    "n_embd": 8,
                    "n_layer": 1,
                    "n_head": 2,
                    "intermediate_size": 16,
                    "block_size": 16,
                    "n_query_groups": 2,
                    "rotary_percentage": 1.0,
                    "_mlp_class": "LLaMAMLP",
                    "bias": False,
                },
                **SMDM_OPTIONS,
            ),
        )


def test_grouped_query_checkpoints_are_refused():
    d, vocab = 8, 5
    state = {
        "transformer.wte.weight": torch.zeros(vocab + 1, d),
        "transformer.ln_f.weight": torch.ones(d),
        "lm_head.weight": torch.zeros(vocab, d),
        "transformer.h.0.attn.attn.weight": torch.zeros(2 * d, d),  # 2 heads share k and v
    }
    with pytest.raises(ValueError, match="grouped-query attention is not supported"):
        convert_smdm_state_dict(state, 2, vocab + 1)


def test_bf16_rotary_tables_follow_the_published_recipe_at_full_size():
    # SMDM-1B: head dim 128, block size 2048. The published `build_rope_cache`: frequencies
    # 1 / base ** (arange(0, n, 2) / n), angles outer(arange(T), theta), cos/sin cast to bf16.
    # The golden fixture (24 positions, head dim 16) cannot tell `1 / b ** x` from `b ** -x`;
    # at full size 118 cos entries would differ by one bf16 step (checked), so check bitwise.
    hd, length, base = 128, 2048, 10000
    theta = 1.0 / (base ** (torch.arange(0, hd, 2) / hd))
    angles = torch.outer(torch.arange(length) / 1, theta)  # condense_ratio 1
    cos, sin = Rotary(hd, float(base), table_dtype=torch.bfloat16).tables(
        torch.arange(length)[None]
    )
    cos, sin = cos[..., : hd // 2], sin[..., : hd // 2]  # the NeoX tables repeat over both halves
    assert cos.dtype == sin.dtype == torch.float32  # applied in float32 arithmetic
    assert torch.equal(cos[0, 0], angles.cos().bfloat16().float())
    assert torch.equal(sin[0, 0], angles.sin().bfloat16().float())


def test_smdm_1b_config_has_smdm_shape(compose_cfg):
    cfg = compose_cfg("backbone=smdm_1b", tiny=False)
    assert cfg.backbone.norm_eps == 1e-5 and cfg.backbone.rope_table_dtype == "bfloat16"
    llama_sized = word_tokenizer(32000)  # offline stand-in for TinyLlama's tokenizer
    llama_sized.add_special_tokens({"mask_token": "<|mdm_mask|>"})
    with torch.device("meta"):  # 1B parameters, no memory
        backbone = instantiate(cfg.backbone, tokenizer=llama_sized)
    assert cfg.backbone.mask_output_row is False
    assert backbone.mask_id == 32000 and backbone.model.lm_head.weight.shape == (32000, 1792)
    embedding = backbone.model.embed.weight.numel() + backbone.model.lm_head.weight.numel()
    non_embedding = sum(p.numel() for p in backbone.parameters()) - embedding
    assert round(non_embedding / 1e6) == 1028  # "Diff_LLaMA_1028M"
    assert len(backbone.model.blocks) == 20 and backbone.model.blocks[0].conv is None
    assert backbone.model.pos_embed is None
    assert backbone.tap_layer == -2  # block 19 of 20 (BackPlay 4.2.1)


def test_smdm_1b_has_the_published_parameter_count(compose_cfg):
    cfg = compose_cfg("backbone=smdm_1b", tiny=False)
    llama_sized = word_tokenizer(32000)  # offline stand-in for TinyLlama's tokenizer
    llama_sized.add_special_tokens({"mask_token": "<|mdm_mask|>"})
    with torch.device("meta"):
        backbone = instantiate(cfg.backbone, tokenizer=llama_sized)
    total = sum(p.numel() for p in backbone.parameters())
    embedding = backbone.model.embed.weight.numel() + backbone.model.lm_head.weight.numel()
    # The published Diff_LLaMA_1028M: wte 32001 x 1792 (mask row included), lm_head 32000 x 1792,
    # 1,027,677,952 in the blocks and the final norm: 1,142,367,744 in all.
    assert total - embedding == 1_027_677_952
    assert total == 1_142_367_744
    # the published parameter set, by its shapes, converts onto exactly these shapes
    d, hidden, layers = 1792, 7168, 20
    published = {
        "transformer.wte.weight": (32001, d),
        "transformer.ln_f.weight": (d,),
        "lm_head.weight": (32000, d),
    }
    for i in range(layers):
        block = f"transformer.h.{i}."
        published |= {
            block + "norm_1.weight": (d,),
            block + "attn.attn.weight": (3 * d, d),
            block + "attn.proj.weight": (d, d),
            block + "norm_2.weight": (d,),
            block + "mlp.swiglu.w1.weight": (hidden, d),
            block + "mlp.swiglu.w2.weight": (hidden, d),
            block + "mlp.swiglu.w3.weight": (d, hidden),
        }
    assert sum(torch.Size(s).numel() for s in published.values()) == 1_142_367_744
    with torch.device("meta"):
        state = {k: torch.empty(s) for k, s in published.items()}
        converted = convert_smdm_state_dict(state, 14, len(llama_sized), mask_output_row=False)
    ours = backbone.model.state_dict()
    assert converted.keys() == ours.keys()
    assert all(converted[k].shape == ours[k].shape for k in ours)
