"""SMDM-1B: the converter reproduces SMDM's forward; the 1B config has SMDM's size."""

from __future__ import annotations

import pytest
import torch
from hydra.utils import instantiate
from safetensors.torch import save_file
from tokenizers import Tokenizer, models
from transformers import PreTrainedTokenizerFast

from backplay_exp.backbones.base import load_backbone
from backplay_exp.backbones.smdm import (
    SMDMBackbone,
    convert_smdm_state_dict,
    rope_half_to_interleaved,
    smdm_tokenizer,
)
from tests.backbones.smdm_reference import RMSNorm, TransEncoder

V, D, LAYERS, HEADS, HIDDEN = 40, 32, 2, 2, 128  # mlp_ratio 4, head dim 16


def set_norm_eps(model, eps):
    for module in model.modules():
        if isinstance(module, RMSNorm):
            module.eps = eps


def word_tokenizer(n: int) -> PreTrainedTokenizerFast:
    vocab = {"</s>": 0, **{f"w{i}": i for i in range(1, n)}}
    return PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer(models.WordLevel(vocab, unk_token="</s>")), eos_token="</s>"
    )


@pytest.fixture
def tokenizer(tmp_path):
    word_tokenizer(V).save_pretrained(tmp_path / "llama_tok")
    return smdm_tokenizer(str(tmp_path / "llama_tok"), "<|mdm_mask|>")


def tiny_smdm(tokenizer, init_from=None):
    return SMDMBackbone(
        init_from=init_from,
        tokenizer=tokenizer,
        d_model=D,
        n_layers=LAYERS,
        n_heads=HEADS,
        mlp_ratio=4.0,
        conv_kernel=0,
        max_len=64,
        learned_pos=False,
        rope_base=10000.0,
        init_std=0.02,
        tap_layer=-2,
    ).eval()


def test_mask_token_goes_right_after_the_vocabulary(tokenizer):
    assert tokenizer.mask_token_id == V and len(tokenizer) == V + 1


def test_rope_permutation_by_hand():
    # NeoX pairs (0,4) (1,5) (2,6) (3,7) become interleaved pairs (0,1) (2,3) (4,5) (6,7)
    assert rope_half_to_interleaved(8).tolist() == [0, 4, 1, 5, 2, 6, 3, 7]


@pytest.mark.parametrize("naming", ["lit_gpt", "tinyllama_swiglu"])
def test_converted_weights_reproduce_smdm(tokenizer, naming):
    torch.manual_seed(0)
    ref = TransEncoder(V, D, LAYERS, HEADS, HIDDEN).eval()
    state = ref.state_dict()
    if naming == "tinyllama_swiglu":  # TinyLlama's xformers SwiGLU names, same maths
        for old, new in (("fc_1", "swiglu.w1"), ("fc_2", "swiglu.w2"), ("proj", "swiglu.w3")):
            state = {k.replace(f"mlp.{old}.", f"mlp.{new}."): v for k, v in state.items()}
    ours = tiny_smdm(tokenizer)
    ours.load_state_dict(convert_smdm_state_dict(state, HEADS, len(tokenizer)))
    tokens = torch.randint(0, V + 1, (2, 12))  # includes the mask id
    with torch.no_grad():
        got = ours(tokens).logits
        smdm_eps = ref(tokens)
        set_norm_eps(ref, 1e-6)  # tiny's RMSNorm eps
        same_eps = ref(tokens)
    assert got.shape == (2, 12, V + 1)
    # same eps: the same function up to float rounding
    torch.testing.assert_close(got[..., :V], same_eps, atol=2e-5, rtol=1e-5)
    # SMDM's own eps (1e-5) moves these small random logits (|x| < 6) by < 2e-3
    torch.testing.assert_close(got[..., :V], smdm_eps, atol=5e-3, rtol=0)
    assert (got[..., V] == 0).all()  # no output row for the mask: its logit is 0


def test_init_from_checkpoint_then_save_load_without_it(tokenizer, tmp_path):
    torch.manual_seed(1)
    ref = TransEncoder(V, D, LAYERS, HEADS, HIDDEN).eval()
    ckpt = tmp_path / "mdm-tiny.safetensors"
    save_file({f"model.{k}": v for k, v in ref.state_dict().items()}, str(ckpt))
    ours = tiny_smdm(tokenizer, init_from=str(ckpt))
    tokens = torch.randint(0, V, (1, 9))
    with torch.no_grad():
        set_norm_eps(ref, 1e-6)
        torch.testing.assert_close(ours(tokens).logits[..., :V], ref(tokens), atol=2e-5, rtol=1e-5)
    cfg = {
        "_target_": "backplay_exp.backbones.smdm.SMDMBackbone",
        "init_from": str(ckpt),
        "tokenizer": {"_target_": "no.such.builder"},
        "d_model": D,
        "n_layers": LAYERS,
        "n_heads": HEADS,
        "mlp_ratio": 4.0,
        "conv_kernel": 0,
        "max_len": 64,
        "learned_pos": False,
        "rope_base": 10000.0,
        "init_std": 0.02,
        "tap_layer": -2,
    }
    ours.save(tmp_path / "bb", cfg)
    ckpt.unlink()  # reloading must not read the SMDM checkpoint (nor build the tokenizer)
    loaded = load_backbone(tmp_path / "bb").eval()
    with torch.no_grad():
        torch.testing.assert_close(loaded(tokens).logits, ours(tokens).logits, rtol=0, atol=0)


def test_grouped_query_checkpoints_are_refused(tokenizer):
    state = TransEncoder(V, D, LAYERS, HEADS, HIDDEN).state_dict()
    state["transformer.h.0.attn.attn.weight"] = torch.zeros(2 * D, D)
    with pytest.raises(ValueError, match="grouped-query attention is not supported"):
        convert_smdm_state_dict(state, HEADS, len(tokenizer))


def test_smdm_1b_config_has_smdm_shape(compose_cfg):
    cfg = compose_cfg("backbone=smdm_1b", tiny=False)
    llama_sized = word_tokenizer(32000)
    llama_sized.add_special_tokens({"mask_token": "<|mdm_mask|>"})
    with torch.device("meta"):  # 1B parameters, no memory
        backbone = instantiate(cfg.backbone, tokenizer=llama_sized)
    assert backbone.mask_id == 32000 and backbone.lm_head.weight.shape == (32001, 1792)
    embedding = backbone.embed.weight.numel() + backbone.lm_head.weight.numel()
    non_embedding = sum(p.numel() for p in backbone.parameters()) - embedding
    assert round(non_embedding / 1e6) == 1028  # "Diff_LLaMA_1028M"
    assert len(backbone.blocks) == 20 and backbone.blocks[0].conv is None
    assert backbone.pos_embed is None
    assert backbone.tap_layer == -2  # block 19 of 20 (BackPlay 4.2.1)
