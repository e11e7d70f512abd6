"""The backbone interface: a masked diffusion LM that returns logits and a tapped hidden state.

METHOD.md section 1: `f_θ(x) -> (logits[B, n, V], hidden[B, n, d])`, bidirectional attention,
`hidden` = the output of block `tap_layer` (default -2, the penultimate block). The `tiny`
in-repo model and the HF adapters implement the same class, so samplers, heads and modules
never know which one they hold.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from omegaconf import DictConfig, OmegaConf
from safetensors.torch import load_file, save_file
from torch import nn
from transformers import AutoTokenizer, PreTrainedTokenizerBase

if TYPE_CHECKING:
    from backplay_exp.transformer.kv_cache import KVCache

CONFIG_FILE, WEIGHTS_FILE, TOKENIZER_DIR = "backbone.yaml", "model.safetensors", "tokenizer"


@dataclass
class BackboneOutput:
    """One forward pass: `logits` (B, L, V) and the tapped `hidden` states (B, L, D)."""

    logits: torch.Tensor
    hidden: torch.Tensor


def output_rows(
    outputs: tuple[int, int] | torch.Tensor | None,
    cache: KVCache | None,
    n: int,
    device: torch.device,
) -> torch.Tensor:
    """(m,) indices into a forward's computed positions of the `outputs` positions.

    Args:
        outputs: A window [lo, hi), a sorted (m,) tensor of positions, or None (all computed).
        cache: The forward's cache (None: the forward computed every position).
        n: How many positions the forward computed.
        device: Where the forward's states are.

    Raises:
        ValueError: if an output position was not computed.
    """
    computed = torch.arange(n, device=device) if cache is None else cache.computed(n, device)
    if outputs is None:
        return torch.arange(len(computed), device=device)
    if isinstance(outputs, torch.Tensor):
        wanted = outputs.to(device)
    else:
        wanted = torch.arange(*outputs, device=device)
    rows = torch.searchsorted(computed, wanted).clamp(max=len(computed) - 1)
    if not torch.equal(computed[rows], wanted):
        raise ValueError("outputs are outside the computed positions")
    return rows


class Backbone(nn.Module):
    """Base class of every DLM backbone: a model plus the tokenizer it was trained with.

    Subclasses implement `forward(tokens, attention_mask) -> BackboneOutput` and set
    `hidden_size`. Special ids come from the tokenizer, so they cannot drift from it.
    """

    tokenizer: PreTrainedTokenizerBase
    hidden_size: int

    def __init__(
        self,
        tokenizer: PreTrainedTokenizerBase,
        mask_id: int | None = None,
        eot_token: str | None = None,
    ) -> None:
        super().__init__()
        self.tokenizer = tokenizer
        self._mask_id, self._eot_token = mask_id, eot_token

    @property
    def mask_id(self) -> int:
        """Id of the mask token M."""
        mask_id = self._mask_id if self._mask_id is not None else self.tokenizer.mask_token_id
        if mask_id is None:
            raise ValueError("the backbone has no mask id: set `backbone.mask_id` in its config")
        return int(mask_id)

    @property
    def eos_id(self) -> int:
        """Id of the end-of-sequence token used to pad responses."""
        return int(self.tokenizer.eos_token_id)

    @property
    def eot_id(self) -> int | None:
        """Id of the end-of-turn token of chat models (None if not configured)."""
        if self._eot_token is None:
            return None
        if not in_vocabulary(self.tokenizer, self._eot_token):
            raise ValueError(f"backbone.eot_token={self._eot_token!r} is not in the vocabulary")
        return int(self.tokenizer.convert_tokens_to_ids(self._eot_token))

    def check_special_ids(self, vocab: int) -> None:
        """Raise a clear error if a special id is missing, contradictory or outside `vocab`."""
        declared = self.tokenizer.mask_token_id
        if self._mask_id is not None and declared is not None and declared != self._mask_id:
            raise ValueError(
                f"backbone.mask_id={self._mask_id} but the tokenizer's mask token "
                f"{self.tokenizer.mask_token!r} has id {declared}: drop one of them"
            )
        if self.tokenizer.eos_token_id is None:
            raise ValueError(
                "the tokenizer has no EoS token: set `backbone.eos_token` (e.g. [SEP] for BERT)"
            )
        for name, tid in (("mask", self.mask_id), ("eos", self.eos_id), ("eot", self.eot_id)):
            if tid is not None and not 0 <= tid < vocab:
                raise ValueError(f"{name} id {tid} is outside the model's vocabulary ({vocab})")

    @property
    def pad_id(self) -> int:
        """Id used for left-padding prompts (never attended to)."""
        pad = self.tokenizer.pad_token_id
        return int(pad if pad is not None else self.eos_id)

    def forward(
        self, tokens: torch.Tensor, attention_mask: torch.Tensor | None = None
    ) -> BackboneOutput:
        """Run the model: `tokens` (B, L) long, `attention_mask` (B, L) bool (True = real)."""
        raise NotImplementedError

    def hidden_states(
        self, tokens: torch.Tensor, attention_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Only the tapped hidden state (B, L, D), what the correction head reads.

        Equal to `forward(...).hidden`. Backbones that can stop at the tapped block override
        it (the blocks after the tap and the LM head are not run); head training calls it.
        """
        return self(tokens, attention_mask).hidden

    def decode(
        self,
        tokens: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        outputs: tuple[int, int] | torch.Tensor | None = None,
        cache: KVCache | None = None,
    ) -> BackboneOutput:
        """One decoding forward: logits only where a step can use them, optionally cached.

        Args:
            tokens: (B, L) long, the whole sequence.
            attention_mask: (B, L) bool, True at real tokens.
            outputs: Positions [lo, hi), or a sorted (m,) tensor of them, that get logits (None
                = every computed position); the LM head and everything after it run only there.
            cache: A `KVCache` that records this forward, or that makes it compute only some
                positions (backbones with their own attention: tiny, SMDM, LLaDA, Dream).

        Returns:
            `logits` (B, m, V) and `hidden` (B, L, D) at every position (outside the computed
            positions of a cached forward: the recorded one).

        Raises:
            ValueError: if a cache is asked of a backbone that cannot use one.
        """
        if cache is not None:
            raise ValueError(
                f"{type(self).__name__} has no key/value cache: use sampler/cache=none "
                "(caches need a backbone with native attention: tiny, smdm_1b, llada_8b, dream_7b)"
            )
        out = self(tokens, attention_mask)
        if isinstance(outputs, torch.Tensor):
            return BackboneOutput(logits=out.logits[:, outputs], hidden=out.hidden)
        lo, hi = outputs if outputs is not None else (0, tokens.shape[1])
        return BackboneOutput(logits=out.logits[:, lo:hi], hidden=out.hidden)

    @staticmethod
    def decoded(
        final: torch.Tensor,
        hidden: torch.Tensor,
        outputs: tuple[int, int] | torch.Tensor | None,
        cache: KVCache | None,
        lm_head: Callable[[torch.Tensor], torch.Tensor],
    ) -> BackboneOutput:
        """`decode`'s outputs from the last block's states and the tapped ones (both (B, n, D)).

        `lm_head` maps final states to logits; it sees only the `outputs` window.
        """
        if isinstance(outputs, torch.Tensor) or (cache is not None and cache.sparse):
            rows = output_rows(outputs, cache, final.shape[1], final.device)
            logits = lm_head(final[:, rows])
            return BackboneOutput(logits=logits, hidden=cache.tapped(hidden) if cache else hidden)
        start = 0 if cache is None else cache.lo
        lo, hi = outputs if outputs is not None else (start, start + final.shape[1])
        if not start <= lo <= hi <= start + final.shape[1]:
            raise ValueError(f"outputs [{lo}, {hi}) are outside the computed positions")
        logits = lm_head(final[:, lo - start : hi - start])  # (B, hi - lo, V)
        return BackboneOutput(
            logits=logits, hidden=hidden if cache is None else cache.tapped(hidden)
        )

    def save(self, out_dir: str | Path, config: DictConfig | dict) -> None:
        """Write `config` (the node that builds this backbone), weights and tokenizer."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(OmegaConf.create(config), out / CONFIG_FILE)
        state = {k: v.detach().contiguous().cpu() for k, v in self.state_dict().items()}
        save_file(state, str(out / WEIGHTS_FILE))
        self.tokenizer.save_pretrained(str(out / TOKENIZER_DIR))

    @classmethod
    def from_saved(cls, ckpt: Path, cfg: DictConfig, overrides: dict) -> Backbone:
        """Rebuild a backbone that `save` wrote into `ckpt` (called by `load_backbone`).

        Builds `cfg` with the saved tokenizer and loads the saved weights. Subclasses that
        save differently (the Hugging Face adapters) override this and `save` together.

        Raises:
            FileNotFoundError: naming the missing file.
        """
        from hydra.utils import instantiate

        for name in (WEIGHTS_FILE, TOKENIZER_DIR):
            require_saved(ckpt, name)
        kwargs = dict(overrides)
        if "tokenizer" in cfg:
            kwargs["tokenizer"] = AutoTokenizer.from_pretrained(str(ckpt / TOKENIZER_DIR))
        backbone: Backbone = instantiate(cfg, **kwargs)
        backbone.load_state_dict(load_file(str(ckpt / WEIGHTS_FILE)))
        return backbone


def check_tap_layer(tap_layer: int, n_layers: int) -> int:
    """`tap_layer` if it indexes `[embeddings, block_1, ..., block_N]` of an N-block model.

    Raises:
        ValueError: naming the allowed range.
    """
    if not -(n_layers + 1) <= tap_layer <= n_layers:
        raise ValueError(
            f"tap_layer={tap_layer} is outside [-{n_layers + 1}, {n_layers}] "
            f"for a {n_layers}-block model"
        )
    return tap_layer


def in_vocabulary(tokenizer: PreTrainedTokenizerBase, token: str) -> bool:
    """Whether `token` is one token of the vocabulary (added tokens included).

    Not `convert_tokens_to_ids(token) != unk_token_id`: Qwen2's unknown token is its EoS.
    """
    return token in tokenizer.get_vocab()


def use_eos_token(
    tokenizer: PreTrainedTokenizerBase, eos_token: str | None
) -> PreTrainedTokenizerBase:
    """Make `eos_token` the token that ends and pads responses; None keeps the tokenizer's.

    Raises:
        ValueError: if the token is not in the vocabulary.
    """
    if eos_token is not None:
        if not in_vocabulary(tokenizer, eos_token):
            raise ValueError(f"backbone.eos_token={eos_token!r} is not in the vocabulary")
        tokenizer.eos_token = eos_token
    return tokenizer


def require_saved(ckpt: Path, name: str) -> None:
    """Raise a clear error if `ckpt / name` (part of a saved backbone) is missing."""
    if not (ckpt / name).exists():
        raise FileNotFoundError(
            f"{ckpt / name} not found: {ckpt} is not a saved backbone "
            "(expected the output of an SFT stage; check the checkpoint path)"
        )


def load_backbone(ckpt_dir: str | Path, overrides: dict | None = None) -> Backbone:
    """Rebuild a backbone saved by `Backbone.save`: its config, its tokenizer, its weights.

    `overrides` replaces config values that do not touch the weights (e.g. `tap_layer`). The
    class named by the saved config's `_target_` rebuilds it (`Backbone.from_saved`).

    Raises:
        FileNotFoundError: naming the missing file, if `ckpt_dir` is not a saved backbone.
    """
    from hydra.utils import get_object

    ckpt = Path(ckpt_dir)
    require_saved(ckpt, CONFIG_FILE)
    cfg = OmegaConf.load(ckpt / CONFIG_FILE)
    target = get_object(cfg._target_)
    builder = target if isinstance(target, type) and issubclass(target, Backbone) else Backbone
    return builder.from_saved(ckpt, cfg, dict(overrides or {}))
