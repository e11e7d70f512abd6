"""A `Backbone` over the project's transformer (`transformer/model.py`): every native model.

`StackBackbone` holds `self.model`, a `DLMTransformer`, and implements the `Backbone` interface
on it once for all: windowed logits, the key/value cache, the tapped hidden state. The tapped
state indexes `[embeddings, block_1, ..., block_{N-1}, norm(block_N)]`, the published
`hidden_states` list, so `tap_layer: -2` is block N-1's output. Subclasses say how the model is
built and loaded (`NativeBackbone`: published LLaDA/Dream checkpoints; `TinyBackbone`: the
embedded model and SMDM), how positions are counted and how outputs align to positions.
"""

from __future__ import annotations

from typing import ClassVar

import torch

from backplay_exp.backbones.base import Backbone, BackboneOutput
from backplay_exp.transformer.kv_cache import KVCache
from backplay_exp.transformer.model import DLMTransformer


class StackBackbone(Backbone):
    """The `Backbone` interface on a `DLMTransformer` (`self.model`; see the module docstring).

    Subclasses set `self.model`, `self.n_layers` and `self.tap_layer` in their constructor.
    """

    model: DLMTransformer
    n_layers: int
    tap_layer: int
    # raw logits at position i are about token i + logit_shift (Dream: 1, others: 0)
    logit_shift: ClassVar[int] = 0

    def positions(self, tokens: torch.Tensor, keep: torch.Tensor | None) -> torch.Tensor:
        """Rotary positions (B, L): 0..L-1 by default (what an unpadded call uses)."""
        return torch.arange(tokens.shape[1], device=tokens.device).expand_as(tokens)

    def first_queries_keys(
        self, tokens: torch.Tensor, positions: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The first block's queries (B, H, n, hd) and keys (B, Hkv, n, hd) at `positions`."""
        return self.model.first_queries_keys(tokens, positions)

    def align_hidden(self, hidden: torch.Tensor) -> torch.Tensor:
        """Map the raw tapped hidden state to positions: identity by default."""
        return hidden

    def _states(
        self,
        tokens: torch.Tensor,
        attention_mask: torch.Tensor | None,
        n_blocks: int,
        cache: KVCache | None = None,
    ) -> list[torch.Tensor]:
        assert tokens.ndim == 2, "tokens must be (B, L)"
        keep = None
        if attention_mask is not None and not bool(attention_mask.all()):
            keep = attention_mask.bool()
        return self.model.states(tokens, self.positions(tokens, keep), keep, n_blocks, cache)

    def decode(
        self,
        tokens: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        outputs: tuple[int, int] | torch.Tensor | None = None,
        cache: KVCache | None = None,
    ) -> BackboneOutput:
        """One decoding forward (see `Backbone.decode`): windowed logits, optional cache.

        With `logit_shift` (Dream: the raw output at i - 1 is about token i) the LM head runs on
        the outputs moved left, and a cached forward's positions are widened to include them.
        """
        if isinstance(outputs, torch.Tensor) or (cache is not None and cache.sparse):
            return self._decode_at(tokens, attention_mask, outputs, cache)
        length, shift = tokens.shape[1], self.logit_shift
        span = slice(0, length) if cache is None else cache.positions(length)
        lo, hi = outputs if outputs is not None else (span.start, span.stop)
        raw_lo, raw_hi = max(lo - shift, 0), hi - shift  # raw outputs about [lo, hi)
        if cache is not None and raw_lo < cache.lo:
            cache.include(torch.tensor([raw_lo]))
        logits, hidden = self._raw_decode(tokens, attention_mask, (raw_lo, raw_hi), cache)
        if lo - shift < 0:  # position 0 has no output about it: it reads raw[0] (dream.py)
            logits = torch.cat([logits[:, :1], logits], dim=1)
        return BackboneOutput(logits=logits, hidden=hidden)

    def _decode_at(
        self,
        tokens: torch.Tensor,
        attention_mask: torch.Tensor | None,
        outputs: torch.Tensor | None,
        cache: KVCache | None,
    ) -> BackboneOutput:
        """`decode` with outputs at a set of positions (m,), or a cache that computes one."""
        if outputs is None:
            assert cache is not None
            outputs = cache.positions(tokens.shape[1])
        raw = (outputs - self.logit_shift).clamp(min=0)  # position 0 reads raw[0] (dream.py)
        if cache is not None:
            cache.include(raw)
        logits, hidden = self._raw_decode(tokens, attention_mask, raw, cache)
        return BackboneOutput(logits=logits, hidden=hidden)

    def _raw_decode(
        self,
        tokens: torch.Tensor,
        attention_mask: torch.Tensor | None,
        raw: tuple[int, int] | torch.Tensor,
        cache: KVCache | None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits at the raw output positions `raw` and the aligned tapped hidden (B, L, D)."""
        states = self._states(tokens, attention_mask, self.n_layers, cache)
        tap = self.tap_layer % (self.n_layers + 1)
        hidden = self.model.norm(states[tap]) if tap == self.n_layers else states[tap]
        out = self.decoded(states[-1], hidden, raw, cache, self.lm_logits)
        return out.logits, self.align_hidden(out.hidden)

    def forward(
        self, tokens: torch.Tensor, attention_mask: torch.Tensor | None = None
    ) -> BackboneOutput:
        """Logits (B, L, V) and the tapped hidden state (B, L, D) of `tokens` (B, L)."""
        return self.decode(tokens, attention_mask)

    def hidden_states(
        self, tokens: torch.Tensor, attention_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The tapped hidden state alone: later blocks and the LM head are not run."""
        tap = self.tap_layer % (self.n_layers + 1)
        hidden = self._states(tokens, attention_mask, tap)[tap]
        if tap == self.n_layers:
            hidden = self.model.norm(hidden)
        return self.align_hidden(hidden)

    def lm_logits(self, final: torch.Tensor) -> torch.Tensor:
        """Logits (B, n, V) of the last block's states (B, n, D)."""
        return self.model.lm_head(self.model.norm(final))
