"""Native LLaDA/Dream checkpoints in and out: layout, shards, hub ids, errors, no remote code."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
import transformers
from hydra.utils import instantiate
from safetensors.torch import load_file

from backplay_exp.backbones.base import load_backbone
from backplay_exp.backbones.dream import DreamBackbone
from backplay_exp.backbones.lora import apply_lora, merge_lora
from backplay_exp.backbones.native import checkpoint
from backplay_exp.backbones.native.checkpoint import INDEX_FILE, KeyMap
from tests.backbones.conftest import native_overrides, real_fixture
from tests.scripts import script_module

KINDS = ["llada", "dream"]


def build(compose_cfg, kind, *extra, dtype="float32", path=None):
    cfg = compose_cfg(*native_overrides(kind, dtype, path), *extra, tiny=False)
    return instantiate(cfg.backbone), cfg


def perturb(backbone, seed=0):
    """Move every weight, as fine-tuning would (so a reload from the source would differ)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in backbone.parameters():
            p.add_(torch.randn(p.shape, generator=gen).to(p.dtype) * 0.01)


def tokens_of(backbone, n=10):
    return torch.randint(
        6, len(backbone.tokenizer), (2, n), generator=torch.Generator().manual_seed(1)
    )


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
@pytest.mark.parametrize("kind", KINDS)
def test_saved_stage_is_the_published_layout_and_reloads_bit_identically(
    compose_cfg, kind, dtype, tmp_path
):
    backbone, cfg = build(compose_cfg, kind, dtype=dtype)
    perturb(backbone)
    backbone.save(tmp_path / "bb", cfg.backbone)
    hf = tmp_path / "bb" / "hf"
    # published layout: the published config (dtype updated), published weight names, tokenizer
    source_config = json.loads(real_fixture(kind, "config.json").read_text())
    saved_config = json.loads((hf / "config.json").read_text())
    assert saved_config["torch_dtype"] == dtype
    drop = ("torch_dtype", "dtype")
    assert {k: v for k, v in saved_config.items() if k not in drop} == {
        k: v for k, v in source_config.items() if k not in drop
    }
    saved_weights = {}
    for shard in hf.glob("*.safetensors"):
        saved_weights |= load_file(str(shard))
    published_names = json.loads(real_fixture(kind, INDEX_FILE).read_text())["weight_map"]
    assert set(saved_weights) == set(published_names)
    assert (hf / "tokenizer.json").exists() and (hf / "generation_config.json").exists()
    # what was saved is what the model holds, and a reload computes exactly the same
    for name, value in backbone.model.state_dict().items():
        assert torch.equal(saved_weights[backbone.keymap.to_published(name)], value)
    loaded = load_backbone(tmp_path / "bb").eval()
    assert type(loaded) is type(backbone)
    tokens = tokens_of(backbone)
    with torch.no_grad():
        a, b = backbone.eval()(tokens), loaded(tokens)
    assert torch.equal(a.logits, b.logits) and torch.equal(a.hidden, b.hidden)
    assert (loaded.mask_id, loaded.eos_id, loaded.eot_id) == (
        backbone.mask_id,
        backbone.eos_id,
        backbone.eot_id,
    )
    assert load_backbone(tmp_path / "bb", {"tap_layer": -1}).tap_layer == -1


@pytest.mark.parametrize("kind", KINDS)
def test_shard_size_decides_between_one_file_and_an_index(compose_cfg, kind, tmp_path):
    backbone, cfg = build(compose_cfg, kind)
    backbone.save(tmp_path / "one", cfg.backbone)
    assert (tmp_path / "one" / "hf" / "model.safetensors").exists()
    assert not (tmp_path / "one" / "hf" / INDEX_FILE).exists()
    backbone.max_shard_size = "100KB"
    backbone.save(tmp_path / "many", cfg.backbone)
    index = json.loads((tmp_path / "many" / "hf" / INDEX_FILE).read_text())
    assert len(set(index["weight_map"].values())) > 2
    tokens = tokens_of(backbone)
    with torch.no_grad():
        expected = backbone.eval()(tokens).logits
        for name in ("one", "many"):
            assert torch.equal(load_backbone(tmp_path / name).eval()(tokens).logits, expected)


def test_lora_must_be_merged_before_saving_and_the_merge_saves(compose_cfg, tmp_path):
    backbone, cfg = build(compose_cfg, "llada")
    lora = compose_cfg("+lora@joint.lora=llada", tiny=False).joint.lora
    apply_lora(backbone, {**lora, "lora_dropout": 0.0})
    assert sum("lora_" in n for n, _ in backbone.named_parameters()) == 2 * 7 * backbone.n_layers
    for name, p in backbone.named_parameters():
        if "lora_B" in name:
            torch.nn.init.normal_(p, std=0.5)
    tokens = tokens_of(backbone)
    adapted = backbone.eval()(tokens).logits.detach()
    with pytest.raises(ValueError, match="merge them before saving"):
        backbone.save(tmp_path / "bb", cfg.backbone)
    merge_lora(backbone).save(tmp_path / "bb", cfg.backbone)
    reloaded = load_backbone(tmp_path / "bb").eval()(tokens).logits
    torch.testing.assert_close(reloaded, adapted, atol=1e-4, rtol=1e-4)  # merge rounding


def test_a_hub_id_is_fetched_with_snapshot_download(compose_cfg, monkeypatch):
    calls = []

    def fake_download(repo_id, revision=None, allow_patterns=None):
        calls.append((repo_id, revision))
        return str(real_fixture("llada"))

    monkeypatch.setattr("huggingface_hub.snapshot_download", fake_download)
    backbone, _ = build(
        compose_cfg, "llada", "backbone.name_or_path=GSAI-ML/LLaDA-8B-Base", "backbone.revision=v1"
    )
    assert calls == [("GSAI-ML/LLaDA-8B-Base", "v1")]
    assert backbone.n_layers == 2


def test_unreachable_hub_ids_and_missing_directories_say_what_to_do(monkeypatch, tmp_path):
    def offline(*args, **kwargs):
        raise OSError("no network")

    monkeypatch.setattr("huggingface_hub.snapshot_download", offline)
    with pytest.raises(FileNotFoundError, match=r"could not be fetched.*download it"):
        checkpoint.resolve_checkpoint("GSAI-ML/LLaDA-8B-Base")
    with pytest.raises(FileNotFoundError, match="is not a checkpoint directory"):
        checkpoint.resolve_checkpoint(str(tmp_path / "nowhere"))


def test_broken_checkpoints_are_refused_by_name(compose_cfg, tmp_path):
    src = real_fixture("llada")
    # a shard missing from the index's directory
    broken = tmp_path / "broken"
    shutil.copytree(src, broken)
    (broken / "model-00002-of-00002.safetensors").unlink()
    with pytest.raises(Exception, match=r"No such file|not found|does not exist"):
        build(compose_cfg, "llada", path=broken)
    # an index that leaves a block out
    partial = tmp_path / "partial"
    shutil.copytree(src, partial)
    index = json.loads((partial / INDEX_FILE).read_text())
    keep = {
        k: v for k, v in index["weight_map"].items() if v.endswith("00001-of-00002.safetensors")
    }
    (partial / INDEX_FILE).write_text(json.dumps({**index, "weight_map": keep}))
    with pytest.raises(Exception, match=r"no weights for \['blocks\.1"):
        build(compose_cfg, "llada", path=partial)
    # a feature of the published family this implementation does not have
    alibi = tmp_path / "alibi"
    shutil.copytree(src, alibi)
    config = json.loads((alibi / "config.json").read_text())
    (alibi / "config.json").write_text(json.dumps({**config, "alibi": True}))
    with pytest.raises(Exception, match=r"uses \{'alibi': True\}.*does not support"):
        build(compose_cfg, "llada", path=alibi)
    with pytest.raises(Exception, match=r"tap_layer=3 is outside \[-3, 2\]"):
        build(compose_cfg, "dream", "backbone.tap_layer=3")


def test_keymap_renames_by_hand():
    keymap = KeyMap([("model.wte", "embed"), ("model.blocks.{i}.attn_out", "blocks.{i}.o_proj")])
    assert keymap.to_native("model.blocks.12.attn_out.weight") == "blocks.12.o_proj.weight"
    assert keymap.to_native("model.wte.weight") == "embed.weight"
    assert keymap.to_native("model.blocks.1.attn_out.lora_A.weight") is None
    assert keymap.to_native("model.other.weight") is None
    assert keymap.to_published("blocks.3.o_proj.bias") == "model.blocks.3.attn_out.bias"
    with pytest.raises(KeyError, match="no published name"):
        keymap.to_published("blocks.3.q_proj.weight")


@pytest.mark.parametrize("kind", KINDS)
def test_no_remote_code_anywhere_on_the_path(compose_cfg, kind, monkeypatch, tmp_path):
    def refuse(*args, **kwargs):
        raise AssertionError("remote code was requested")

    # every door through which transformers runs a checkpoint's own code
    monkeypatch.setattr(transformers.dynamic_module_utils, "get_class_from_dynamic_module", refuse)
    monkeypatch.setattr(transformers.dynamic_module_utils, "get_cached_module_file", refuse)
    for auto in (transformers.AutoConfig, transformers.AutoModel, transformers.AutoTokenizer):
        original = auto.from_pretrained

        def guarded(*args, _original=original, **kwargs):
            if kwargs.get("trust_remote_code"):
                raise AssertionError("trust_remote_code=True was passed")
            return _original(*args, **kwargs)

        monkeypatch.setattr(auto, "from_pretrained", guarded)
    backbone, cfg = build(compose_cfg, kind)
    assert "trust_remote_code" not in cfg.backbone
    backbone.save(tmp_path / "bb", cfg.backbone)
    load_backbone(tmp_path / "bb")(tokens_of(backbone))


def test_the_real_dream_tokenizer_loads_without_remote_code_and_round_trips(tmp_path):
    tokenizer = DreamBackbone.load_tokenizer(real_fixture("dream_tokenizer"), None)
    assert type(tokenizer).__name__ == "Qwen2Tokenizer"  # no tokenizer.json: vocab + merges
    ids = tokenizer("Hello world, 3+4=7").input_ids
    assert ids == [9707, 1879, 11, 220, 18, 10, 19, 28, 22]  # the published tokenizer's ids
    assert (tokenizer.mask_token_id, tokenizer.eos_token_id, len(tokenizer)) == (
        151666,
        151643,
        151667,
    )
    tokenizer.save_pretrained(str(tmp_path))  # what a saved stage holds
    again = DreamBackbone.load_tokenizer(tmp_path, None)
    assert again("Hello world, 3+4=7").input_ids == ids
    assert again.convert_tokens_to_ids("<|im_end|>") == 151645


@pytest.mark.slow
def test_a_sharded_bf16_load_holds_about_one_copy_of_the_weights():
    # scripts/load_memory.py: a random LLaDA-shaped bf16 checkpoint (~125M parameters, 5 shards),
    # loaded in a fresh process; peak resident memory the load adds, every weight read once
    real_fixture("llada")
    with script_module("load_memory") as script:
        figures = script.run(d_model=768, n_layers=8, vocab=32000, shard_size="50MB")
    assert figures["shards"] >= 4
    assert figures["params"] > 100e6
    assert figures["ratio"] <= 1.5, figures


def test_gradient_checkpointing_recomputes_each_block_with_the_same_gradients(compose_cfg):
    grads, calls = {}, {}
    for flag in (False, True):
        backbone, _ = build(compose_cfg, "dream", f"backbone.gradient_checkpointing={flag}")
        backbone.train()
        calls[flag] = []
        for block in backbone.model.blocks:
            block.register_forward_pre_hook(lambda *_, c=calls[flag]: c.append(1))
        backbone(tokens_of(backbone)).logits.square().mean().backward()
        grads[flag] = {n: p.grad for n, p in backbone.named_parameters()}
    assert len(calls[False]) == 2 and len(calls[True]) == 4  # each block run again in backward
    for name, grad in grads[False].items():
        torch.testing.assert_close(grads[True][name], grad, rtol=1e-5, atol=1e-7)
