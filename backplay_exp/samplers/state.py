"""What a batch's decode carries between steps, and what one step sees (METHOD.md section 6).

`DecodeState` holds the batch (B rows, T = P + gen_length positions): tokens, per-row counters
(steps, NFE, remasks, edits), the remask memory, done flags and the current block's bookkeeping.
`Step` is the view of one step's rows (b of them) after its forward pass, which every component
reads; `DecodeState.apply` writes the step's decisions back. Components never keep per-batch
state of their own, except the cache policy's record of keys and values.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import torch


class Head(Protocol):
    """A correction head: hidden states (B, T, D) -> logits (B, T) of 'this token is correct'."""

    def __call__(self, hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Correctness logits (B, T) of the hidden states (B, T, D)."""
        ...


@dataclass
class DecodeResult:
    """Output of `Decoder.generate` for B problems.

    Attributes:
        tokens: (B, gen_length) response tokens.
        nfe: (B,) forward passes per problem.
        remasks: (B,) tokens remasked per problem.
        edits: (B,) tokens edited per problem.
        edit_events: (E, 4) long, one row `(problem, response position, old, new)` per edit,
            in the order they happened.
    """

    tokens: torch.Tensor
    nfe: torch.Tensor
    remasks: torch.Tensor
    edits: torch.Tensor
    edit_events: torch.Tensor


@dataclass
class Step:
    """One step of the rows decoded in it (b of them), after its forward pass.

    Attributes:
        rows: (b,) batch indices. x: (b, T) tokens. attn: (b, T) bool, real tokens.
        hidden: (b, T, D) tapped hidden states. x_hat, conf: (b, T) proposed tokens and their
            confidence (outside the window: the current token, confidence 0).
        masked: (b, T) bool. committed: (b, T) bool, committed response tokens of the look-back
            window. candidates: (b, T) bool, masks at or left of the block's end.
        visible_block: (b, T) bool, committed tokens of the current block.
        step, in_block: (b,) steps taken in all and in this block. due: (b,) bool, rows that
            remask this step. uncapped: (b,) bool, rows under the block's step cap.
        last_remask: (b, T) long, the step at which each position was last remasked.
    """

    rows: torch.Tensor
    x: torch.Tensor
    attn: torch.Tensor
    hidden: torch.Tensor
    x_hat: torch.Tensor
    conf: torch.Tensor
    masked: torch.Tensor
    committed: torch.Tensor
    candidates: torch.Tensor
    visible_block: torch.Tensor
    step: torch.Tensor
    in_block: torch.Tensor
    due: torch.Tensor
    uncapped: torch.Tensor
    last_remask: torch.Tensor


@dataclass
class DecodeState:
    """A batch being decoded (see module doc); built by `start`, updated by `apply`."""

    x: torch.Tensor  # (B, T) tokens, prompt included
    attn: torch.Tensor  # (B, T) bool, True at real tokens (left padding is False)
    is_prompt: torch.Tensor  # (B, T) bool
    prompt_len: int
    mask_id: int
    nfe: torch.Tensor  # (B,) forward passes (guidance counts 2)
    step: torch.Tensor  # (B,) decoding steps (guidance does not double these)
    remasks: torch.Tensor  # (B,)
    edits: torch.Tensor  # (B,)
    last_remask: torch.Tensor  # (B, T) step of each position's last remask
    done: torch.Tensor  # (B,) bool, stopped early
    events: list[torch.Tensor] = field(default_factory=list)  # (e, 4) edit events per step
    # the current block: [lo, hi), its look-back window from win_lo, its commit plan (B, S)
    lo: int = 0
    hi: int = 0
    win_lo: int = 0
    plan: torch.Tensor | None = None
    in_block: torch.Tensor | None = None  # (B,) steps taken in the block
    checked: torch.Tensor | None = None  # (B,) bool, the final check judged and kept it
    unsettled: torch.Tensor | None = None  # (B,) bool, the editor changed the block last step
    judge: torch.Tensor | None = None  # (B,) bool, this step is a final check (stop rule)
    uncapped: torch.Tensor | None = None  # (B,) bool, under the block's step cap (stop rule)

    @classmethod
    def start(
        cls,
        prompt_ids: torch.Tensor,
        prompt_mask: torch.Tensor | None,
        gen_length: int,
        mask_id: int,
    ) -> DecodeState:
        """A batch of left-padded prompts (B, P) followed by `gen_length` masks."""
        b, p_len = prompt_ids.shape
        if prompt_mask is None:
            prompt_mask = torch.ones_like(prompt_ids, dtype=torch.bool)
        canvas = torch.full((b, gen_length), mask_id, dtype=torch.long, device=prompt_ids.device)
        x = torch.cat([prompt_ids, canvas], dim=1)  # (B, T)
        attn = torch.cat([prompt_mask.bool(), torch.ones_like(canvas, dtype=torch.bool)], dim=1)
        is_prompt = torch.zeros_like(x, dtype=torch.bool)
        is_prompt[:, :p_len] = prompt_mask.bool()
        zeros = torch.zeros(b, dtype=torch.long, device=x.device)
        return cls(
            x, attn, is_prompt, p_len, mask_id, zeros, zeros.clone(), zeros.clone(),
            zeros.clone(), torch.full_like(x, -(10**9)), torch.zeros_like(zeros, dtype=torch.bool),
        )  # fmt: skip

    def blocks(self, block_length: int) -> list[tuple[int, int]]:
        """The response's blocks `[lo, hi)`, left to right (the last may be shorter)."""
        ends = range(self.prompt_len, self.x.shape[1], block_length)
        return [(lo, min(lo + block_length, self.x.shape[1])) for lo in ends]

    def enter_block(self, lo: int, hi: int, win_lo: int) -> torch.Tensor:
        """Make [lo, hi) the current block, its window starting at `win_lo`: (B,) its masks."""
        self.lo, self.hi, self.win_lo = lo, hi, win_lo
        self.in_block = torch.zeros_like(self.nfe)
        self.checked = torch.zeros_like(self.done)
        self.unsettled = torch.zeros_like(self.done)
        return (self.x[:, lo:hi] == self.mask_id).sum(-1)

    def view(
        self,
        rows: torch.Tensor,
        due: torch.Tensor,
        hidden: torch.Tensor,
        x_hat: torch.Tensor,
        conf: torch.Tensor,
    ) -> Step:
        """The `Step` of `rows` (b,): its due rows (b,), hidden states, proposals (b, T)."""
        assert self.in_block is not None and self.uncapped is not None
        x = self.x[rows]  # (b, T)
        pos = torch.arange(x.shape[1], device=x.device)  # (T,)
        masked = x == self.mask_id
        return Step(
            rows=rows,
            x=x,
            attn=self.attn[rows],
            hidden=hidden,
            x_hat=x_hat,
            conf=conf,
            masked=masked,
            committed=~masked & (pos >= self.win_lo) & (pos < self.hi),
            candidates=masked & (pos < self.hi),
            visible_block=~masked & (pos >= self.lo) & (pos < self.hi),
            step=self.step[rows],
            in_block=self.in_block[rows],
            due=due,
            uncapped=self.uncapped[rows],
            last_remask=self.last_remask[rows],
        )

    def apply(
        self,
        step: Step,
        commit: torch.Tensor,
        remask: torch.Tensor,
        edit: torch.Tensor,
        unsettled: torch.Tensor,
        cost: int,
    ) -> None:
        """Write one step's decisions back (all (b, T) bool but `unsettled` (b,)).

        Commits take the proposed tokens, remasks put the mask back (and enter the memory),
        edits take the proposal; the step's rows count `cost` forward passes.
        """
        assert self.judge is not None and self.checked is not None and self.in_block is not None
        rows, x = step.rows, step.x
        x_new = torch.where(commit, step.x_hat, x)
        x_new = torch.where(remask, self.mask_id, x_new)
        x_new = torch.where(edit, step.x_hat, x_new)
        self.last_remask[rows] = torch.where(remask, step.step[:, None], step.last_remask)
        self.remasks[rows] += remask.sum(-1)
        self.edits[rows] += edit.sum(-1)
        r, p = edit.nonzero(as_tuple=True)
        self.events.append(
            torch.stack([rows[r], p - self.prompt_len, x[r, p], step.x_hat[r, p]], -1)
        )
        self.unsettled[rows] = unsettled
        self.x[rows] = x_new
        self.checked[rows] = self.judge[rows] & ~remask.any(-1)
        self.nfe[rows] += cost
        self.step[rows] += 1
        self.in_block[rows] += 1

    def result(self) -> DecodeResult:
        """The responses and per-row counts."""
        events = torch.cat(self.events) if self.events else self.x.new_zeros(0, 4)
        return DecodeResult(
            self.x[:, self.prompt_len :], self.nfe, self.remasks, self.edits, events
        )
