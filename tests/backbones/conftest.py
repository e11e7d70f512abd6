"""Tiny random Hugging Face models saved to disk, so every adapter runs offline."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from transformers import (
    AutoConfig,
    AutoModel,
    BertConfig,
    BertForMaskedLM,
    ModernBertConfig,
    ModernBertForMaskedLM,
)

from backplay_exp.data.tokenizer import EOS, MASK, char_tokenizer
from tests.backbones import standin_modeling

STANDIN_FILE = Path(__file__).with_name("standin_modeling.py")
LAYERS = 3  # every tiny model has 3 blocks
STANDIN_CLASSES = {  # kind -> (config class, model class) in standin_modeling.py
    "llada": ("LLaDAStandinConfig", "LLaDAStandinModelLM"),
    "dream": ("DreamStandinConfig", "DreamStandinModel"),
}


def save_masked_lm(out: Path, kind: str) -> Path:
    tok = char_tokenizer()
    common = {
        "vocab_size": len(tok),
        "hidden_size": 16,
        "intermediate_size": 32,
        "num_hidden_layers": LAYERS,
        "num_attention_heads": 2,
        "max_position_embeddings": 128,
        "pad_token_id": tok.pad_token_id,
    }
    if kind == "bert":
        model = BertForMaskedLM(BertConfig(**common))
    else:
        ids = {f"{k}_token_id": tok.eos_token_id for k in ("bos", "eos", "cls", "sep")}
        model = ModernBertForMaskedLM(ModernBertConfig(**common, **ids, local_attention=16))
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out


def save_standin(out: Path, kind: str, **config) -> Path:
    """A remote-code model directory (config.json with auto_map + modeling file + weights)."""
    tok = char_tokenizer()
    out.mkdir(parents=True)
    shutil.copy(STANDIN_FILE, out / "modeling_standin.py")
    config_class, model_class = STANDIN_CLASSES[kind]
    auto_map = {
        "AutoConfig": f"modeling_standin.{config_class}",
        "AutoModel": f"modeling_standin.{model_class}",
    }
    config_cls = getattr(standin_modeling, config_class)
    config_cls(vocab_size=len(tok), n_layers=LAYERS, auto_map=auto_map, **config).save_pretrained(
        out
    )
    cfg = AutoConfig.from_pretrained(out, trust_remote_code=True)
    AutoModel.from_config(cfg, trust_remote_code=True).save_pretrained(out)
    tok.save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def model_dirs(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("hf_models")
    return {
        "bert": save_masked_lm(root / "bert", "bert"),
        "modernbert": save_masked_lm(root / "modernbert", "modernbert"),
        "llada": save_standin(root / "llada", "llada"),
        "dream": save_standin(root / "dream", "dream"),
    }


# backbone option and the overrides that point it at the tiny offline model
OPTIONS = {
    "bert": "hf_masked_lm",
    "modernbert": "hf_masked_lm",
    "llada": "llada_8b",
    "dream": "dream_7b",
}


def backbone_overrides(kind: str, path: Path, dtype: str = "float32") -> list[str]:
    over = [
        f"backbone={OPTIONS[kind]}",
        f"backbone.name_or_path={path}",
        "backbone.tokenizer_name_or_path=null",
        f"backbone.dtype={dtype}",
        f"backbone.eos_token='{EOS}'",
        "backbone.eot_token=null",
    ]
    if kind in ("llada", "dream"):  # real ids are the 8B vocabularies'; ours is the char one
        over.append("backbone.mask_id=2")
    return over


assert MASK == "<|mask|>"  # id 2 in char_tokenizer
