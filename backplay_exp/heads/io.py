"""Saving and loading a trained correction head with the config that builds it."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig, OmegaConf
from safetensors.torch import load_file, save_file
from torch import nn

HEAD_CONFIG, HEAD_WEIGHTS = "head.yaml", "head.safetensors"


def save_head(head: nn.Module, out_dir: str | Path, config: DictConfig | dict) -> None:
    """Write the head's config (with `d_in` filled in) and weights into `out_dir`."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    OmegaConf.save(OmegaConf.create(config), out / HEAD_CONFIG)
    save_file(
        {k: v.detach().contiguous().cpu() for k, v in head.state_dict().items()},
        str(out / HEAD_WEIGHTS),
    )


def load_head(ckpt_dir: str | Path) -> nn.Module:
    """Rebuild a head saved by `save_head`.

    Raises:
        FileNotFoundError: naming the missing file.
    """
    from hydra.utils import instantiate

    ckpt = Path(ckpt_dir)
    for name in (HEAD_CONFIG, HEAD_WEIGHTS):
        if not (ckpt / name).exists():
            raise FileNotFoundError(
                f"{ckpt / name} not found: {ckpt} is not a saved correction head "
                "(expected the output of a head stage; check head_train.checkpoint)"
            )
    head: nn.Module = instantiate(OmegaConf.load(ckpt / HEAD_CONFIG))
    head.load_state_dict(load_file(str(ckpt / HEAD_WEIGHTS)))
    return head
