"""Offline stand-ins for LLaDA's and Dream's remote modeling code (loaded with trust_remote_code).

Both are tiny bidirectional transformers with the real models' forward signatures and output
fields. Hidden states follow the real models: `[embeddings, block_1, ..., block_{N-1},
final_norm(block_N)]` (N + 1 entries). The Dream stand-in's logits are shifted like Dream's:
`logits[:, i]` predicts token `i + 1`; with `next_token_oracle` its logits are exactly
`10 * one_hot(input_ids[:, i + 1])` (the last position wraps to token 0), so the right
realignment can be worked out by hand.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PretrainedConfig, PreTrainedModel
from transformers.modeling_outputs import CausalLMOutputWithPast, MaskedLMOutput


def _config_init(
    self, vocab_size=64, d_model=16, n_layers=3, n_heads=2, next_token_oracle=False, **kwargs
):
    self.vocab_size, self.d_model, self.n_layers, self.n_heads = (
        vocab_size,
        d_model,
        n_layers,
        n_heads,
    )
    self.num_hidden_layers = n_layers
    self.hidden_size = d_model
    self.next_token_oracle = next_token_oracle
    PretrainedConfig.__init__(self, **kwargs)


class LLaDAStandinConfig(PretrainedConfig):
    model_type = "llada_standin"
    __init__ = _config_init


class DreamStandinConfig(PretrainedConfig):
    model_type = "dream_standin"
    __init__ = _config_init


class _Block(nn.Module):
    def __init__(self, d, n_heads):
        super().__init__()
        self.n_heads = n_heads
        self.norm1, self.norm2 = nn.RMSNorm(d), nn.RMSNorm(d)
        self.qkv, self.out = nn.Linear(d, 3 * d, bias=False), nn.Linear(d, d, bias=False)
        self.up, self.down = nn.Linear(d, 2 * d, bias=False), nn.Linear(2 * d, d, bias=False)

    def forward(self, x, mask):
        b, n, d = x.shape
        q, k, v = self.qkv(self.norm1(x)).view(b, n, 3, self.n_heads, -1).unbind(2)
        q, k, v = (t.transpose(1, 2) for t in (q, k, v))
        a = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        x = x + self.out(a.transpose(1, 2).reshape(b, n, d))
        return x + self.down(F.gelu(self.up(self.norm2(x))))


class _Standin(PreTrainedModel):
    base_model_prefix = "model"
    supports_gradient_checkpointing = False

    def __init__(self, config):
        super().__init__(config)
        self.calls: list[dict] = []  # every forward's keyword arguments (for the tests)
        self.embed = nn.Embedding(config.vocab_size, config.d_model)
        self.blocks = nn.ModuleList(
            _Block(config.d_model, config.n_heads) for _ in range(config.n_layers)
        )
        self.norm = nn.RMSNorm(config.d_model)
        self.lm_head = nn.Linear(config.d_model, config.vocab_size, bias=False)
        self.post_init()

    def _init_weights(self, module):
        if isinstance(module, nn.Linear | nn.Embedding):
            nn.init.normal_(module.weight, std=0.2)

    def _run(self, input_ids, mask):
        x = self.embed(input_ids)
        states = []
        for block in self.blocks:
            states.append(x)
            x = block(x, mask)
        x = self.norm(x)
        states.append(x)
        logits = self.lm_head(x)
        if self.config.next_token_oracle:
            nxt = torch.roll(input_ids, -1, dims=1)
            logits = 10.0 * F.one_hot(nxt, self.config.vocab_size).to(logits.dtype)
        return logits, tuple(states)


class LLaDAStandinModelLM(_Standin):
    """LLaDAModelLM's forward signature; a 2-D `attention_mask` (1 = real token)."""

    config_class = LLaDAStandinConfig

    def forward(
        self,
        input_ids=None,
        input_embeddings=None,
        attention_mask=None,
        attention_bias=None,
        past_key_values=None,
        labels=None,
        use_cache=None,
        output_attentions=None,
        output_hidden_states=None,
        return_dict=None,
        cache_position=None,
    ):
        self.calls.append({"attention_mask": attention_mask, "use_cache": use_cache})
        assert not use_cache, "LLaDA has no KV cache"
        mask = None
        if attention_mask is not None:
            mask = attention_mask.bool()[:, None, None, :]
        logits, states = self._run(input_ids, mask)
        return CausalLMOutputWithPast(
            logits=logits, hidden_states=states if output_hidden_states else None
        )


class DreamStandinModel(_Standin):
    """DreamModel's forward signature: a 4-D bool mask or the string "full", position ids."""

    config_class = DreamStandinConfig

    def forward(
        self,
        input_ids=None,
        attention_mask=None,
        position_ids=None,
        past_key_values=None,
        inputs_embeds=None,
        labels=None,
        use_cache=None,
        output_attentions=None,
        output_hidden_states=None,
        return_dict=None,
        cache_position=None,
        num_logits_to_keep=0,
        **loss_kwargs,
    ):
        self.calls.append({"attention_mask": attention_mask, "position_ids": position_ids})
        mask = attention_mask if isinstance(attention_mask, torch.Tensor) else None
        if mask is not None:
            assert mask.ndim == 4 and mask.dtype == torch.bool, "Dream takes a 4-D bool mask"
        logits, states = self._run(input_ids, mask)
        return MaskedLMOutput(logits=logits, hidden_states=states if output_hidden_states else None)
