"""Offline backbones for the tests: tiny random HF masked LMs, and the real-backbone fixtures.

LLaDA and Dream are tested against `../shared/fixtures/real_backbones/` (tiny random
checkpoints in the published layout with golden outputs of the published code); tests that need
them skip when `../shared` is absent.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from transformers import (
    BertConfig,
    BertForMaskedLM,
    ModernBertConfig,
    ModernBertForMaskedLM,
)

from backplay_exp.data.tokenizer import EOS, char_tokenizer

LAYERS = 3  # every tiny HF model has 3 blocks
# ../shared/fixtures/real_backbones relative to the project root (never copied into the repo)
REAL_BACKBONES = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "real_backbones"
NATIVE = {"llada": "llada_8b", "dream": "dream_7b"}  # fixture directory -> backbone option


def real_fixture(*parts: str) -> Path:
    """A path of the real-backbone fixtures, or skip the test when `../shared` is not there."""
    path = REAL_BACKBONES.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real-backbone fixture not available at {path}")
    return path


def native_overrides(kind: str, dtype: str = "float32", path: Path | None = None) -> list[str]:
    """Overrides that point `backbone=llada_8b|dream_7b` at its tiny published-layout fixture.

    The fixture tokenizers carry the real special tokens, so only the ids come from the
    fixture's config.json (`mask_id=null`) instead of the 8B vocabularies'.
    """
    return [
        f"backbone={NATIVE[kind]}",
        f"backbone.name_or_path='{path or real_fixture(kind)}'",
        "backbone.tokenizer_name_or_path=null",
        f"backbone.dtype={dtype}",
        "backbone.mask_id=null",
    ]


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


@pytest.fixture(scope="session")
def model_dirs(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("hf_models")
    return {
        "bert": save_masked_lm(root / "bert", "bert"),
        "modernbert": save_masked_lm(root / "modernbert", "modernbert"),
    }


# backbone option of each tiny HF model
OPTIONS = {"bert": "hf_masked_lm", "modernbert": "hf_masked_lm"}


def backbone_overrides(kind: str, path: Path, dtype: str = "float32") -> list[str]:
    return [
        f"backbone={OPTIONS[kind]}",
        f"backbone.name_or_path={path}",
        "backbone.tokenizer_name_or_path=null",
        f"backbone.dtype={dtype}",
        f"backbone.eos_token='{EOS}'",
        "backbone.eot_token=null",
    ]
