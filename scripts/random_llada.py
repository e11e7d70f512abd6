"""Random models of LLaDA's architecture for the cost scripts (no hub, no trained weights).

`write_config(out, ...)` writes a `config.json` in LLaDA's published fields (the fixture's, with
other sizes) and the fixture's small tokenizer into `out`; `build(out)` returns a randomly
initialised `LLaDABackbone` of it (`random_init`: nothing but the config is read).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT.parent / "shared" / "fixtures" / "real_backbones" / "llada"
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json")


def write_config(
    out: Path, d_model: int, n_layers: int, vocab: int, mlp_ratio: float = 3.0
) -> dict:
    """LLaDA's config.json at this size (head dim 64; LLaDA-8B's MLP is 3 x width), + tokenizer."""
    config = json.loads((FIXTURE / "config.json").read_text())
    config |= {
        "d_model": d_model,
        "n_layers": n_layers,
        "n_heads": d_model // 64,
        "n_kv_heads": d_model // 64,
        "mlp_hidden_size": int(mlp_ratio * d_model),
        "vocab_size": vocab,
        "embedding_size": vocab,
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps(config, indent=2))
    for name in TOKENIZER_FILES:
        shutil.copyfile(FIXTURE / name, out / name)
    return config


def build(out: Path, dtype: str = "float32", seed: int = 0):
    """A random `LLaDABackbone` of the config in `out` (eval mode)."""
    import torch

    from backplay_exp.backbones.llada import LLaDABackbone

    torch.manual_seed(seed)
    backbone = LLaDABackbone(name_or_path=str(out), dtype=dtype, tap_layer=-2, random_init=True)
    return backbone.eval()
