"""Tiny fakes for unit tests: a backbone whose logits are a fixed table."""

from __future__ import annotations

import torch

from backplay_exp.backbones.base import Backbone, BackboneOutput
from backplay_exp.backbones.tiny import TinyBackbone
from backplay_exp.data.tokenizer import char_tokenizer
from backplay_exp.samplers.decoder import Decoder
from backplay_exp.samplers.remaskers import HeadRemasker
from backplay_exp.samplers.state import Step
from backplay_exp.samplers.stop import StopRule


def tok_id(tokenizer, char: str) -> int:
    return tokenizer.convert_tokens_to_ids(char)


class TableBackbone(Backbone):
    """Predicts `token[i]` at response position i with confidence ranked by `score[i]`.

    Logits do not depend on the input (except per row: `tables` is indexed by the row's last
    prompt token), so the decoding order is fully determined by the table. Every input it sees
    is recorded in `seen`.
    """

    name = "table"

    def __init__(self, tokens: dict[str, list[str]], scores: dict[str, list[float]]):
        super().__init__(char_tokenizer())
        self.hidden_size = 4
        self.rows = {}
        vocab = len(self.tokenizer)
        for key, toks in tokens.items():
            logits = torch.zeros(len(toks), vocab)
            for i, (t, s) in enumerate(zip(toks, scores[key], strict=True)):
                tid = self.eos_id if t == "<eos>" else tok_id(self.tokenizer, t)
                logits[i, tid] = s
            self.rows[tok_id(self.tokenizer, key)] = logits
        self.seen: list[torch.Tensor] = []
        self.dummy = torch.nn.Parameter(torch.zeros(1))

    def forward(self, tokens, attention_mask=None):
        self.seen.append(tokens.clone())
        b, t = tokens.shape
        out = torch.zeros(b, t, len(self.tokenizer))
        for r in range(b):
            table = self.rows[int(tokens[r, self.prompt_len - 1])]
            out[r, self.prompt_len :] = table
        return BackboneOutput(logits=out, hidden=torch.zeros(b, t, self.hidden_size))

    prompt_len = 1


class FixedHead(torch.nn.Module):
    """A correction head whose error probability per response position is given (or all 1)."""

    def __init__(self, err_by_pos=None, prompt_len=1):
        super().__init__()
        self.err, self.prompt_len = err_by_pos, prompt_len
        self.calls = 0

    def forward(self, hidden, attention_mask=None):
        self.calls += 1
        b, t, _ = hidden.shape
        err = torch.ones(b, t) if self.err is None else torch.zeros(b, t)
        if self.err is not None:
            err[:, self.prompt_len : self.prompt_len + len(self.err)] = torch.tensor(self.err)
        p_correct = (1 - err).clamp(1e-6, 1 - 1e-6)
        return torch.log(p_correct / (1 - p_correct))  # logit of "correct"


class EditTableBackbone(TableBackbone):
    """`TableBackbone` at masked positions; at visible response positions it predicts
    `edits[key][i]` with logit `edit_logit` (so it proposes that token as an edit there).
    """

    def __init__(self, tokens, scores, edits, edit_logit=10.0):
        super().__init__(tokens, scores)
        self.edit_rows = {}
        for key, toks in edits.items():
            logits = torch.zeros(len(toks), len(self.tokenizer))
            for i, t in enumerate(toks):
                logits[i, tok_id(self.tokenizer, t)] = edit_logit
            self.edit_rows[tok_id(self.tokenizer, key)] = logits

    def forward(self, tokens, attention_mask=None):
        out = super().forward(tokens, attention_mask)
        p = self.prompt_len
        for r in range(tokens.shape[0]):
            visible = tokens[r, p:] != self.mask_id
            edit = self.edit_rows[int(tokens[r, p - 1])]
            out.logits[r, p:][visible] = edit[visible]
        return out


class DisagreeingBackbone(TableBackbone):
    """At every visible response position, confidently predicts a token other than the one
    there (an editor that always disagrees)."""

    def forward(self, tokens, attention_mask=None):
        out = super().forward(tokens, attention_mask)
        p, a, b = self.prompt_len, tok_id(self.tokenizer, "a"), tok_id(self.tokenizer, "b")
        visible = tokens[:, p:] != self.mask_id
        other = torch.where(tokens[:, p:] == a, b, a)  # (B, n)
        flip = torch.full_like(out.logits[:, p:], 0.0).scatter(-1, other[..., None], 20.0)
        out.logits[:, p:] = torch.where(visible[..., None], flip, out.logits[:, p:])
        return out


def backplay_policy(cls=HeadRemasker, **kw):
    """`cls` (a HeadRemasker) with test defaults: τ 0.5, K 2, every step, buffer 4, no
    memory/checks."""
    args = dict(
        threshold=0.5,
        max_remask=2,
        stride=1,
        block_buffer=4,
        memory_steps=0,
        check_block_start=False,
        final_check=False,
    )
    return cls(**(args | kw))


def stop_rule(early_stop=True, max_steps_factor=4):
    """The decoder's stop rule with METHOD.md's defaults."""
    return StopRule(early_stop=early_stop, max_steps_factor=max_steps_factor)


def decode(bb, head, pol, gen=4, block=2, k=1, early_stop=True, max_steps_factor=4, **kw):
    """Decode the one-token prompt "x" with remasker `pol` (and `head`) on a table backbone."""
    stop = stop_rule(early_stop, max_steps_factor)
    dec = Decoder(pol, gen_length=gen, block_length=block, tokens_per_step=k, stop=stop, **kw)
    prompt = torch.tensor([[tok_id(bb.tokenizer, "x")]])
    return dec.generate(bb, prompt, head=head)


def small_tiny(
    seed: int, n_layers: int = 2, tap_layer: int = -2, conv_kernel: int = 5
) -> TinyBackbone:
    """A seeded random 32-wide `tiny` backbone in eval mode (large init, so outputs vary)."""
    torch.manual_seed(seed)
    return TinyBackbone(
        char_tokenizer(),
        d_model=32,
        n_layers=n_layers,
        n_heads=2,
        mlp_ratio=2.0,
        conv_kernel=conv_kernel,
        max_len=64,
        learned_pos=True,
        rope_base=10000.0,
        init_std=0.3,
        tap_layer=tap_layer,
    ).eval()


class ErrorHead:
    """A head that returns the logits of given error probabilities `p_err` (b, T)."""

    def __init__(self, p_err):
        self.p_err = p_err.clamp(1e-6, 1 - 1e-6)

    def __call__(self, hidden, attention_mask=None):
        return torch.log((1 - self.p_err) / self.p_err)  # logit of "correct"


def make_step(x, committed, due, step, last_remask, **kw):
    """A decoding `Step` of hand-made tensors (the other fields: neutral defaults)."""
    zeros = torch.zeros_like(x, dtype=torch.bool)
    fields = dict(
        rows=torch.arange(len(x)),
        x=x,
        attn=torch.ones_like(zeros),
        hidden=torch.zeros(*x.shape, 1),
        x_hat=x,
        conf=torch.zeros(x.shape, dtype=torch.float64),
        masked=zeros,
        committed=committed,
        candidates=zeros,
        visible_block=zeros,
        step=step,
        in_block=torch.zeros_like(step),
        due=due,
        uncapped=torch.ones_like(due),
        last_remask=last_remask,
    )
    return Step(**(fields | kw))
