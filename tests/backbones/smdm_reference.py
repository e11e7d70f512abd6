"""A from-the-paper re-implementation of SMDM's TransEncoder (lit-gpt/TinyLlama layout).

Written to the lit-gpt conventions the converter must undo: per-head grouped `attn.attn` rows
`[q_h, k_h, v_h]`, GPT-NeoX rotary (channel j paired with j + hd/2), SwiGLU `fc_1`/`fc_2`/`proj`,
RMSNorm with eps 1e-5, an embedding with one extra row (the mask, id V) and a V-row output layer,
no causal mask. Only used to test `convert_smdm_state_dict`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class RMSNorm(nn.Module):
    def __init__(self, d, eps=1e-5):
        super().__init__()
        self.eps, self.weight = eps, nn.Parameter(torch.ones(d))

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def neox_rope(x, base=10000.0):
    """x (B, H, L, hd): rotate channel j with j + hd/2 (lit-gpt `apply_rope`)."""
    hd, n = x.shape[-1], x.shape[-2]
    theta = 1.0 / base ** (torch.arange(0, hd, 2).float() / hd)  # (hd/2,)
    ang = torch.outer(torch.arange(n).float(), theta)  # (L, hd/2)
    cos, sin = ang.cos().repeat(1, 2), ang.sin().repeat(1, 2)  # (L, hd)
    x1, x2 = x[..., : hd // 2], x[..., hd // 2 :]
    return x * cos + torch.cat([-x2, x1], dim=-1) * sin


class Attn(nn.Module):
    def __init__(self, d, n_heads):
        super().__init__()
        self.n_heads = n_heads
        self.attn = nn.Linear(d, 3 * d, bias=False)
        self.proj = nn.Linear(d, d, bias=False)

    def forward(self, x):
        b, n, d = x.shape
        hd = d // self.n_heads
        qkv = self.attn(x).view(b, n, self.n_heads, 3, hd)  # grouped per head
        q, k, v = (qkv[:, :, :, i].transpose(1, 2) for i in range(3))  # (B, H, L, hd)
        y = F.scaled_dot_product_attention(neox_rope(q), neox_rope(k), v, is_causal=False)
        return self.proj(y.transpose(1, 2).reshape(b, n, d))


class MLP(nn.Module):
    def __init__(self, d, hidden):
        super().__init__()
        self.fc_1 = nn.Linear(d, hidden, bias=False)
        self.fc_2 = nn.Linear(d, hidden, bias=False)
        self.proj = nn.Linear(hidden, d, bias=False)

    def forward(self, x):
        return self.proj(F.silu(self.fc_1(x)) * self.fc_2(x))


class Block(nn.Module):
    def __init__(self, d, n_heads, hidden):
        super().__init__()
        self.norm_1, self.attn = RMSNorm(d), Attn(d, n_heads)
        self.norm_2, self.mlp = RMSNorm(d), MLP(d, hidden)

    def forward(self, x):
        x = x + self.attn(self.norm_1(x))
        return x + self.mlp(self.norm_2(x))


class TransEncoder(nn.Module):
    def __init__(self, vocab, d, n_layers, n_heads, hidden):
        super().__init__()
        self.lm_head = nn.Linear(d, vocab, bias=False)
        self.transformer = nn.ModuleDict(
            {
                "wte": nn.Embedding(vocab + 1, d),
                "h": nn.ModuleList(Block(d, n_heads, hidden) for _ in range(n_layers)),
                "ln_f": RMSNorm(d),
            }
        )
        for p in self.parameters():
            nn.init.normal_(p, std=0.3) if p.ndim == 2 else nn.init.uniform_(p, 0.5, 1.5)

    def forward(self, idx):
        x = self.transformer.wte(idx)
        for block in self.transformer.h:
            x = block(x)
        return self.lm_head(self.transformer.ln_f(x))
