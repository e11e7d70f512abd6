"""Published DLM checkpoints on this package's own transformer: no remote code, exact outputs.

`NativeBackbone` reads a published checkpoint (a directory or a hub id) with its published
`config.json` and weight names, and runs it on `DLMTransformer`. Subclasses (`LLaDABackbone`,
`DreamBackbone`) say how the published config reads, what the weights are called, which
tokenizer class reads the tokenizer files, how positions are counted and how the outputs align
to positions. The tapped hidden state indexes `[embeddings, block_1, ..., block_{N-1},
norm(block_N)]`, the published `hidden_states` list, so `tap_layer: -2` is block N-1's output.

Saving writes `backbone.yaml` and, in `hf/`, the published layout (config.json, safetensors
shards with the published names, index, tokenizer), which other code loads as it loads the
published model; `load_backbone` reads it back bit-identically.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import torch
from hydra.utils import get_class
from omegaconf import DictConfig, OmegaConf

from backplay_exp.backbones.base import (
    CONFIG_FILE,
    Backbone,
    check_tap_layer,
    require_saved,
    use_eos_token,
)
from backplay_exp.backbones.hf import HF_DIR, resolve_dtype
from backplay_exp.backbones.lora import has_lora
from backplay_exp.backbones.native.checkpoint import (
    KeyMap,
    load_weights,
    read_config,
    resolve_checkpoint,
    save_published,
)
from backplay_exp.backbones.stack import StackBackbone
from backplay_exp.transformer.config import TransformerConfig
from backplay_exp.transformer.model import DLMTransformer


def unsupported(config: dict[str, Any], expected: dict[str, Any], family: str) -> None:
    """Raise if a published config asks for a feature this implementation does not have.

    Args:
        config: The published config.
        expected: Field -> the only value supported (a missing field counts as supported).
        family: Model family, for the message.
    """
    wrong = {k: config[k] for k, v in expected.items() if k in config and config[k] != v}
    if wrong:
        raise ValueError(
            f"this {family} checkpoint uses {wrong}, which the native implementation does not "
            f"support (it implements {expected})"
        )


class NativeBackbone(StackBackbone):
    """A published checkpoint run by `DLMTransformer` (see the module docstring).

    Args:
        name_or_path: Directory or hub id of the checkpoint (published, or saved by a stage).
        dtype: `float32`, `bfloat16` or `float16`; null = as stored.
        tap_layer: Index into `[embeddings, block_1, ..., norm(block_N)]` of `hidden`.
        mask_id: Id of the mask token; null = config.json's `mask_token_id`, else the
            tokenizer's mask token.
        eos_token: Token that ends and pads responses; null = the tokenizer's EoS.
        eot_token: End-of-turn token of chat models, if any.
        tokenizer_name_or_path: Where the tokenizer lives; null = the checkpoint.
        revision: Hub revision of `name_or_path` (ignored for a directory).
        random_init: Build from config.json alone with random weights (no weight files read).
        gradient_checkpointing: Recompute each block's activations in backward.
        max_shard_size: Largest safetensors shard when saving.
        tokenizer_class: Import path of the tokenizer class; null = `PreTrainedTokenizerFast`
            when the directory has a `tokenizer.json` (the complete serialised tokenizer), else
            the family's class (`family_tokenizer`; e.g. Qwen2's BPE from
            vocab.json + merges.txt). Never a remote-code class.
    """

    keymap: ClassVar[KeyMap]
    family_tokenizer: ClassVar[str] = "transformers.PreTrainedTokenizerFast"
    family: ClassVar[str] = "native"

    def __init__(
        self,
        name_or_path: str,
        dtype: str | None,
        tap_layer: int,
        mask_id: int | None = None,
        eos_token: str | None = None,
        eot_token: str | None = None,
        tokenizer_name_or_path: str | None = None,
        revision: str | None = None,
        random_init: bool = False,
        gradient_checkpointing: bool = False,
        max_shard_size: str = "5GB",
        tokenizer_class: str | None = None,
    ) -> None:
        source = resolve_checkpoint(name_or_path, revision)
        published = read_config(source)
        cfg = self.transformer_config(published)
        tok_dir = resolve_checkpoint(tokenizer_name_or_path) if tokenizer_name_or_path else source
        tokenizer = self.load_tokenizer(tok_dir, tokenizer_class)
        if mask_id is None:
            mask_id = published.get("mask_token_id")
        super().__init__(use_eos_token(tokenizer, eos_token), mask_id, eot_token)
        self.source, self.published_config = source, published
        self.n_layers, self.hidden_size = cfg.n_layers, cfg.d_model
        self.tap_layer = check_tap_layer(tap_layer, cfg.n_layers)
        self.max_shard_size = max_shard_size
        self.model = self._build(cfg, source, resolve_dtype(dtype), random_init)
        self.model.gradient_checkpointing = gradient_checkpointing
        self.check_special_ids(cfg.vocab_size)

    @classmethod
    def load_tokenizer(cls, directory: Path, tokenizer_class: str | None) -> Any:
        """The tokenizer of `directory`, read by a transformers class (see `tokenizer_class`)."""
        if tokenizer_class is None:
            has_json = (directory / "tokenizer.json").exists()
            tokenizer_class = (
                "transformers.PreTrainedTokenizerFast" if has_json else cls.family_tokenizer
            )
        return get_class(tokenizer_class).from_pretrained(str(directory))

    def _build(
        self, cfg: TransformerConfig, source: Path, dtype: torch.dtype | None, random_init: bool
    ) -> DLMTransformer:
        """Build on the meta device, then load the shards (or initialise randomly)."""
        with torch.device("meta"):
            model = DLMTransformer(cfg)
        if not random_init:
            load_weights(model, source, self.keymap, dtype)
            return model
        model.to(dtype or torch.float32).to_empty(device="cpu")  # one copy, in its dtype
        model.reset_parameters()
        return model

    # --- what a family says --------------------------------------------------------------

    @classmethod
    def transformer_config(cls, published: dict[str, Any]) -> TransformerConfig:
        """The `TransformerConfig` of a published config.json (subclasses)."""
        raise NotImplementedError

    def save(self, out_dir: str | Path, config: DictConfig | dict) -> None:
        """Write `config` and, in `hf/`, the published layout with the tokenizer.

        Raises:
            ValueError: if LoRA adapters are still injected (merge them first).
        """
        if has_lora(self):
            raise ValueError(
                "the backbone still holds LoRA adapters: merge them before saving "
                "(backplay_exp.backbones.lora.merge_lora)"
            )
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(OmegaConf.create(config), out / CONFIG_FILE)
        tied = self.model.cfg.tie_embeddings
        state = {
            self.keymap.to_published(name): value
            for name, value in self.model.state_dict().items()
            if not (tied and name == "lm_head.weight")
        }
        hf = out / HF_DIR
        save_published(state, self.published_config, hf, self.source, self.max_shard_size)
        self.tokenizer.save_pretrained(str(hf))

    @classmethod
    def from_saved(cls, ckpt: Path, cfg: DictConfig, overrides: dict) -> Backbone:
        """Rebuild from `ckpt/hf` (weights and tokenizer; nothing downloaded)."""
        from hydra.utils import instantiate

        require_saved(ckpt, HF_DIR)
        local = {
            "name_or_path": str(ckpt / HF_DIR),
            "tokenizer_name_or_path": None,
            "revision": None,
            "random_init": False,
        }
        return instantiate(cfg, **{**overrides, **local})
