"""Published checkpoints in and out: hub name or directory, `config.json`, sharded safetensors.

Loading builds the model on the meta device (no weight memory), then fills it shard by shard
from the safetensors files named by `model.safetensors.index.json` (or one `model.safetensors`),
renaming each published tensor to this package's name and casting it to the requested dtype.
A shard's tensors are assigned as they are (`load_state_dict(assign=True)`: no second copy),
and its file is closed before the next one is opened, so an 8B model needs about one copy of
its weights in memory plus one shard. Saving writes the published layout back: `config.json`,
safetensors shards with the published names and their index (huggingface_hub's
`save_torch_state_dict`), and the source checkpoint's other small files, so a fine-tuned model
loads wherever the published one does.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from torch import nn

CONFIG_FILE, INDEX_FILE, SINGLE_FILE = (
    "config.json",
    "model.safetensors.index.json",
    "model.safetensors",
)
# small files of a checkpoint worth carrying over when saving (modeling code, generation and
# tokenizer configs, chat templates); weights are rewritten, everything else is left behind
AUX_SUFFIXES = (".py", ".json", ".txt", ".model", ".jinja", ".tiktoken")
HUB_FILES = ["*.json", "*.safetensors", "*.py", "*.txt", "*.model", "*.jinja", "*.tiktoken"]


def resolve_checkpoint(name_or_path: str, revision: str | None = None) -> Path:
    """A local directory holding the checkpoint: `name_or_path` itself, or a hub snapshot.

    Args:
        name_or_path: A directory, or a hub repository id (fetched with
            `huggingface_hub.snapshot_download`, which reuses the local cache and honours
            `HF_HUB_OFFLINE`).
        revision: Hub revision (branch, tag or commit); None = the default branch.

    Raises:
        FileNotFoundError: if it is neither a directory nor fetchable from the hub.
    """
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        return path
    if path.exists() or name_or_path.startswith(("/", ".", "~")) or name_or_path.count("/") != 1:
        raise FileNotFoundError(
            f"backbone.name_or_path={name_or_path!r} is not a checkpoint directory "
            "(nor a hub id of the form owner/name)"
        )
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(name_or_path, revision=revision, allow_patterns=HUB_FILES))
    except Exception as err:  # offline, unknown repo, gated model, ...
        raise FileNotFoundError(
            f"backbone.name_or_path={name_or_path!r} is not a local directory and could not be "
            f"fetched from the Hugging Face hub ({type(err).__name__}: {err}); download it "
            "and pass its directory"
        ) from err


def read_config(src: Path) -> dict[str, Any]:
    """The checkpoint's `config.json` as a dict.

    Raises:
        FileNotFoundError: if there is none.
    """
    if not (src / CONFIG_FILE).exists():
        raise FileNotFoundError(f"{src / CONFIG_FILE} not found: {src} is not a model checkpoint")
    return json.loads((src / CONFIG_FILE).read_text())


def weight_files(src: Path) -> list[Path]:
    """The safetensors files of a checkpoint, in the order its index names them.

    Raises:
        FileNotFoundError: if it has neither an index nor `model.safetensors`.
    """
    if (src / INDEX_FILE).exists():
        weight_map = json.loads((src / INDEX_FILE).read_text())["weight_map"]
        return [src / name for name in dict.fromkeys(weight_map.values())]
    if (src / SINGLE_FILE).exists():
        return [src / SINGLE_FILE]
    raise FileNotFoundError(
        f"{src} has no {INDEX_FILE} or {SINGLE_FILE} (only safetensors checkpoints are read; "
        "convert a .bin checkpoint with transformers first)"
    )


class KeyMap:
    """Published parameter names <-> this package's, from pairs of module-path templates.

    Each pair is `(published, native)`, `{i}` standing for a block index, e.g.
    `("model.transformer.blocks.{i}.attn_out", "blocks.{i}.o_proj")`; the parameter suffix
    (`.weight`, `.bias`) is carried over unchanged.
    """

    def __init__(self, pairs: Sequence[tuple[str, str]]) -> None:
        self.pairs = list(pairs)
        self._to_native = [(self._pattern(p), n) for p, n in self.pairs]
        self._to_published = [(self._pattern(n), p) for p, n in self.pairs]

    @staticmethod
    def _pattern(template: str) -> re.Pattern[str]:
        body = re.escape(template).replace(r"\{i\}", r"(?P<i>\d+)")
        return re.compile(rf"{body}\.(?P<param>\w+)")

    @staticmethod
    def _rename(key: str, table: list[tuple[re.Pattern[str], str]]) -> str | None:
        for pattern, template in table:
            match = pattern.fullmatch(key)
            if match:
                path = template.replace("{i}", match.groupdict().get("i") or "")
                return f"{path}.{match['param']}"
        return None

    def to_native(self, key: str) -> str | None:
        """This package's name of a published tensor (None if the map does not know it)."""
        return self._rename(key, self._to_native)

    def to_published(self, key: str) -> str:
        """The published name of one of this package's tensors.

        Raises:
            KeyError: if the map does not know it.
        """
        published = self._rename(key, self._to_published)
        if published is None:
            raise KeyError(f"no published name for parameter {key!r}")
        return published


def load_weights(model: nn.Module, src: Path, keymap: KeyMap, dtype: torch.dtype | None) -> None:
    """Fill a meta-device `model` from the checkpoint's shards (see the module docstring).

    Raises:
        ValueError: naming unknown published tensors, or parameters no shard provided.
    """
    unknown: list[str] = []
    for path in weight_files(src):
        shard: dict[str, torch.Tensor] = {}
        with safe_open(str(path), framework="pt", device="cpu") as f:
            for key in f.keys():  # noqa: SIM118 (safe_open is not a dict)
                name = keymap.to_native(key)
                if name is None:
                    unknown.append(key)
                    continue
                tensor = f.get_tensor(key)
                shard[name] = tensor if dtype is None else tensor.to(dtype)
        model.load_state_dict(shard, strict=False, assign=True)
        del shard
    if unknown:
        raise ValueError(f"{src}: tensors this architecture does not have: {unknown[:8]}")
    if hasattr(model, "tie_weights"):  # a tied head still points at the meta embedding
        model.tie_weights()
    missing = [n for n, p in model.named_parameters(remove_duplicate=False) if p.is_meta]
    if missing:
        raise ValueError(f"{src}: no weights for {missing[:8]} (an incomplete checkpoint?)")


def save_published(
    state: dict[str, torch.Tensor],
    config: dict[str, Any],
    out: Path,
    source: Path | None,
    max_shard_size: str | int,
) -> None:
    """Write `state` (published names) and `config` as a checkpoint in the published layout.

    Args:
        state: Tensors under their published names.
        config: The published `config.json` content (its dtype fields are updated here).
        out: Directory to write into.
        source: The checkpoint it came from, whose small files (modeling code, generation and
            tokenizer configs) are carried over; None for none.
        max_shard_size: Largest shard (e.g. "5GB"); more shards get an index file.
    """
    from huggingface_hub import save_torch_state_dict

    out.mkdir(parents=True, exist_ok=True)
    if source is not None:
        for path in sorted(source.iterdir()):
            if (
                path.is_file()
                and path.suffix in AUX_SUFFIXES
                and path.name
                not in (
                    CONFIG_FILE,
                    INDEX_FILE,
                )
            ):
                shutil.copyfile(path, out / path.name)
    dtypes = {str(t.dtype).removeprefix("torch.") for t in state.values()}
    config = dict(config)
    if len(dtypes) == 1:
        config["torch_dtype"] = dtypes.pop()
        if "dtype" in config:
            config["dtype"] = config["torch_dtype"]
    save_torch_state_dict(
        {k: v.detach().cpu() for k, v in state.items()},
        out,
        max_shard_size=max_shard_size,
        metadata={"format": "pt"},
    )
    (out / CONFIG_FILE).write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
