"""Hugging Face models as DLM backbones: the shared adapter behind `llada`, `dream`, `hf_masked_lm`.

METHOD.md section 1: `f_θ(x) -> (logits[B, n, V], hidden[B, n, d])` from ONE forward pass. The
adapter calls the model once with `output_hidden_states=True` and keeps one entry.

Hidden-state tap. These models return N + 1 hidden states for N blocks,
`[embeddings, block_1, ..., block_{N-1}, final_norm(block_N)]` (LLaDA, Dream and ModernBERT
apply the final norm to the last entry). `tap_layer` indexes this list exactly as it indexes
tiny's `[embeddings, block_1, ..., block_N]`, so the default -2 is the output of block N-1 for
every backbone (LLaDA-8B: block 31 of 32, the paper's choice); only -1 differs (normed here).

Saving. `save` writes `backbone.yaml` (the config that built the backbone, hub name kept as
provenance), the model with `save_pretrained` into `hf/` (remote code included) and the tokenizer
into `tokenizer/`; `from_saved` (used by `load_backbone`) rebuilds it from those, offline.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import torch
from omegaconf import DictConfig, OmegaConf
from transformers import AutoConfig, AutoTokenizer, PretrainedConfig, PreTrainedModel

from backplay_exp.backbones.base import (
    CONFIG_FILE,
    TOKENIZER_DIR,
    Backbone,
    BackboneOutput,
    check_tap_layer,
    require_saved,
    use_eos_token,
)

HF_DIR = "hf"
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
# config attribute names of the block count and width, across model families
LAYER_KEYS = ("num_hidden_layers", "n_layers", "num_layers", "n_layer")
WIDTH_KEYS = ("hidden_size", "d_model", "n_embd", "dim")


def resolve_dtype(name: str | None) -> torch.dtype | None:
    """`"bfloat16"` -> `torch.bfloat16`; None keeps the checkpoint's dtype.

    Raises:
        ValueError: naming the allowed names.
    """
    if name is None:
        return None
    if name not in DTYPES:
        raise ValueError(f"backbone.dtype={name!r} is not one of {', '.join(DTYPES)} (or null)")
    return DTYPES[name]


def config_value(config: PretrainedConfig, keys: tuple[str, ...], what: str) -> int:
    """The first of `keys` that `config` has (e.g. the number of blocks).

    Raises:
        ValueError: if none is present.
    """
    for key in keys:
        value = getattr(config, key, None)
        if isinstance(value, int):
            return value
    raise ValueError(f"{type(config).__name__} has none of {keys}: cannot tell the model's {what}")


class HFBackbone(Backbone):
    """A Hugging Face model that returns logits and hidden states, as a DLM backbone.

    Subclasses name the auto class (`auto_class`) and say how to feed the model
    (`model_inputs`) and how to align its outputs to positions (`align`).

    Args:
        name_or_path: Hub name or local directory of the model.
        dtype: Weight dtype (`bfloat16`, `float32`, `float16`; null = the checkpoint's).
        tap_layer: Index into `[embeddings, block_1, ..., final]` of the `hidden` output.
        trust_remote_code: Run the model's own modeling code (LLaDA, Dream).
        mask_id: Id of the mask token; null = the tokenizer's `mask_token_id`.
        eos_token: Token that ends a response and pads it (sets the tokenizer's EoS); null
            keeps the tokenizer's.
        eot_token: End-of-turn token of chat models (`eot_id`), if any.
        tokenizer_name_or_path: Where the tokenizer lives; null = `name_or_path`.
        attn_implementation: Passed to `from_pretrained` (e.g. `sdpa`); null = its default.
        gradient_checkpointing: Recompute block activations in backward (saves memory).
    """

    auto_class: ClassVar[str] = "AutoModel"

    def __init__(
        self,
        name_or_path: str,
        dtype: str | None,
        tap_layer: int,
        trust_remote_code: bool,
        mask_id: int | None = None,
        eos_token: str | None = None,
        eot_token: str | None = None,
        tokenizer_name_or_path: str | None = None,
        attn_implementation: str | None = None,
        gradient_checkpointing: bool = False,
    ) -> None:
        tokenizer = AutoTokenizer.from_pretrained(
            tokenizer_name_or_path or name_or_path, trust_remote_code=trust_remote_code
        )
        super().__init__(use_eos_token(tokenizer, eos_token), mask_id, eot_token)
        # the config first: a wrong tap_layer fails before billions of weights load
        config = AutoConfig.from_pretrained(name_or_path, trust_remote_code=trust_remote_code)
        self.n_layers = config_value(config, LAYER_KEYS, "number of blocks")
        self.hidden_size = config_value(config, WIDTH_KEYS, "hidden size")
        self.tap_layer = check_tap_layer(tap_layer, self.n_layers)
        self.model = self.load_model(
            name_or_path, config, dtype, trust_remote_code, attn_implementation
        )
        self.check_special_ids(self._vocab_size())
        if gradient_checkpointing:
            self.enable_gradient_checkpointing()

    def load_model(
        self,
        name_or_path: str,
        config: PretrainedConfig,
        dtype: str | None,
        trust_remote_code: bool,
        attn_implementation: str | None,
    ) -> PreTrainedModel:
        """Load the model with `transformers.<auto_class>.from_pretrained`."""
        import transformers

        kwargs: dict[str, Any] = {"config": config, "trust_remote_code": trust_remote_code}
        if dtype is not None:
            kwargs["dtype"] = resolve_dtype(dtype)
        if attn_implementation is not None:
            kwargs["attn_implementation"] = attn_implementation
        auto = getattr(transformers, self.auto_class)
        # from_pretrained returns eval mode; a freshly built nn.Module (like tiny) trains
        return auto.from_pretrained(name_or_path, **kwargs).train()

    def _vocab_size(self) -> int:
        try:
            return self.model.get_input_embeddings().num_embeddings
        except (NotImplementedError, AttributeError):
            return config_value(self.model.config, ("vocab_size",), "vocabulary size")

    def enable_gradient_checkpointing(self) -> None:
        """Turn on Hugging Face gradient checkpointing (non-reentrant, so LoRA works too).

        Raises:
            ValueError: if the model does not support it.
        """
        if not getattr(self.model, "supports_gradient_checkpointing", False):
            raise ValueError(
                f"{type(self.model).__name__} does not support gradient checkpointing: "
                "set backbone.gradient_checkpointing=false"
            )
        self.model.activation_checkpointing_enable({"use_reentrant": False})

    def model_inputs(self, tokens: torch.Tensor, keep: torch.Tensor | None) -> dict[str, Any]:
        """Keyword arguments of the model call.

        Args:
            tokens: (B, L) long.
            keep: (B, L) bool, True at real tokens; None when nothing is padding.
        """
        return {"input_ids": tokens, "attention_mask": None if keep is None else keep.long()}

    def align(
        self, logits: torch.Tensor, hidden: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Map raw outputs to positions: `logits[:, i]` must be about token i (identity here)."""
        return logits, hidden

    def forward(
        self, tokens: torch.Tensor, attention_mask: torch.Tensor | None = None
    ) -> BackboneOutput:
        """Logits (B, L, V) and the tapped hidden state (B, L, D) from one forward pass."""
        assert tokens.ndim == 2, "tokens must be (B, L)"
        keep = None
        if attention_mask is not None and not bool(attention_mask.all()):
            keep = attention_mask.bool()
        out = self.model(
            **self.model_inputs(tokens, keep), output_hidden_states=True, return_dict=True
        )
        states = out.hidden_states
        if states is None or len(states) != self.n_layers + 1:
            got = None if states is None else len(states)
            raise RuntimeError(
                f"{type(self.model).__name__} returned {got} hidden states, expected "
                f"{self.n_layers + 1} (embeddings + one per block); this adapter does not fit it"
            )
        logits, hidden = self.align(out.logits, states[self.tap_layer])  # (B, L, V), (B, L, D)
        return BackboneOutput(logits=logits, hidden=hidden)

    def save(self, out_dir: str | Path, config: DictConfig | dict) -> None:
        """Write `config`, the model (`save_pretrained` into `hf/`) and the tokenizer.

        Raises:
            ValueError: if LoRA adapters are still injected (merge them first).
        """
        if any("lora_" in name for name, _ in self.model.named_parameters()):
            raise ValueError(
                "the backbone still holds LoRA adapters: merge them before saving "
                "(backplay_exp.backbones.lora.merge_lora)"
            )
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(OmegaConf.create(config), out / CONFIG_FILE)
        self.model.save_pretrained(str(out / HF_DIR))
        self.tokenizer.save_pretrained(str(out / TOKENIZER_DIR))

    @classmethod
    def from_saved(cls, ckpt: Path, cfg: DictConfig, overrides: dict) -> Backbone:
        """Rebuild from `ckpt/hf` and `ckpt/tokenizer` (nothing downloaded)."""
        from hydra.utils import instantiate

        for name in (HF_DIR, TOKENIZER_DIR):
            require_saved(ckpt, name)
        paths = {
            "name_or_path": str(ckpt / HF_DIR),
            "tokenizer_name_or_path": str(ckpt / TOKENIZER_DIR),
        }
        return instantiate(cfg, **{**overrides, **paths})
