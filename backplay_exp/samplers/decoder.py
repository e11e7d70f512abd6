"""The semi-autoregressive denoising loop shared by every decoding policy (METHOD.md section 6).

The response canvas of `gen_length` masks is split into blocks of `block_length`. Each step is one
forward pass (NFE += 1 per row; classifier-free guidance makes it 2): the policy may remask
committed tokens of its look-back window, then the schedule's count of the best-ranked masks at or
left of the current block is committed. A block ends when no mask is left up to its end, so
remasking only adds steps (timeline rollback); a block may take at most `max_steps_factor` times its
plain steps, after which nothing is remasked (termination guarantee). After a block, a row whose
block holds EoS stops (early stop) and the rest of its canvas is filled with EoS. The head runs
only on steps where a remask is due, on the hidden states of that step's forward pass.
Rows are batched and finish independently; prompts are left-padded and the padding is
masked out of attention.

Cost. Only positions from the look-back window's start through the current block can change
in a step, so the LM head, the softmax and the candidate proposal run there alone (windowed
outputs; with `full_canvas_noise` and a temperature, over the whole sequence as LLaDA's
generate() draws its noise). `cache` (`samplers/cache.py`) also skips recomputing the keys and
values of the positions left of the window (and, `dual`, right of the block).

Token editing (`t2t_edit`, or `backplay` with an `edit_threshold`): each step, a visible response
token of the current block whose prediction differs from it with probability above the threshold
is replaced (an edit). A block then ends only after a step that changed nothing (the editor
has settled) or at its step cap, so an editor that always disagrees still terminates.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import torch

from backplay_exp.backbones.base import Backbone
from backplay_exp.backbones.kv_cache import KVCache
from backplay_exp.samplers.cache import DecodeCache
from backplay_exp.samplers.policies import ConfidencePolicy, StepState
from backplay_exp.samplers.schedules import FixedK, Schedule
from backplay_exp.samplers.select import propose_tokens, select_top


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


def edit_positions(
    x: torch.Tensor,
    x_hat: torch.Tensor,
    confidence: torch.Tensor,
    editable: torch.Tensor,
    threshold: float,
) -> torch.Tensor:
    """Tokens to edit: editable, predicted differently, with confidence above the threshold.

    Args:
        x: (b, T) current tokens.
        x_hat: (b, T) the model's prediction at every position.
        confidence: (b, T) probability of that prediction.
        editable: (b, T) bool, the visible response tokens the editor may touch.
        threshold: The edit threshold.

    Returns:
        (b, T) bool.
    """
    return editable & (x_hat != x) & (confidence > threshold)


def widen(
    x_hat: torch.Tensor, confidence: torch.Tensor, x: torch.Tensor, window: tuple[int, int]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Window proposals (b, W) onto the whole sequence (b, T).

    Outside the window the proposal is the current token with confidence 0 (nothing there is
    a candidate: positions left of the window are committed, right of the block are not yet
    decoded).
    """
    lo, hi = window
    full_hat = x.clone()
    full_hat[:, lo:hi] = x_hat
    full_conf = confidence.new_zeros(x.shape)
    full_conf[:, lo:hi] = confidence
    return full_hat, full_conf


class Decoder:
    """Batched semi-autoregressive sampler.

    Args:
        policy: Ranks candidates and chooses remasks (config group `remask`).
        gen_length: Response canvas length.
        block_length: Semi-autoregressive block length.
        tokens_per_step: k of the paper's `fixed_k` schedule (used when `schedule` is None).
        schedule: Another schedule (`LladaSchedule`, `ThresholdSchedule`), replacing
            `tokens_per_step`.
        temperature: Gumbel temperature of the candidate tokens (0 = argmax).
        early_stop: Stop a row after a block that contains EoS.
        cfg_scale: Classifier-free guidance weight w (0 disables it).
        max_steps_factor: Remasking stops once a block has taken this many times its plain steps.
        cache: Key/value cache `none`, `prefix` or `dual` (`samplers/cache.py`).
        cache_refresh: When the cache is recorded anew: `block` (each block start) or `judge`
            (also whenever the head judges, so that it reads an exact forward).
        full_canvas_noise: With temperature > 0, draw the Gumbel noise (and compute logits)
            over the whole sequence, as LLaDA's generate() does, so that its random stream
            and tokens are reproduced; False draws it only where a step can commit.
    """

    def __init__(
        self,
        policy: ConfidencePolicy,
        gen_length: int,
        block_length: int,
        tokens_per_step: int | None = 1,
        schedule: Schedule | None = None,
        temperature: float = 0.0,
        early_stop: bool = True,
        cfg_scale: float = 0.0,
        max_steps_factor: int = 4,
        cache: str = "none",
        full_canvas_noise: bool = False,
        cache_refresh: str = "block",
    ) -> None:
        if gen_length < 1 or block_length < 1:
            raise ValueError("gen_length and block_length must be >= 1")
        if block_length > gen_length:
            raise ValueError(f"block_length={block_length} exceeds gen_length={gen_length}")
        if schedule is None:
            if tokens_per_step is None:
                raise ValueError("set sampler.tokens_per_step or give the sampler a schedule")
            schedule = FixedK(tokens_per_step)
        schedule.check(gen_length, block_length)
        self.policy, self.schedule = policy, schedule
        self.tokens_per_step = schedule.tokens_per_step
        self.gen_length, self.block_length = gen_length, block_length
        self.temperature, self.early_stop, self.cfg_scale = temperature, early_stop, cfg_scale
        self.max_steps_factor = max_steps_factor
        DecodeCache(cache, cache_refresh)  # validates the mode
        if cache != "none" and cfg_scale > 0:
            raise ValueError(
                "classifier-free guidance runs a second, prompt-masked pass that the cache does "
                "not hold: use sampler.cache=none with sampler.cfg_scale > 0"
            )
        self.cache, self.full_canvas_noise = cache, full_canvas_noise
        self.cache_refresh = cache_refresh

    def describe(self) -> dict[str, Any]:
        """How this decoder commits and caches (written to results.json)."""
        return {
            "schedule": self.schedule.name,
            "commit_threshold": getattr(self.schedule, "threshold", None),
            "cache": self.cache,
            "cache_refresh": self.cache_refresh,
        }

    def _forward(
        self,
        backbone: Backbone,
        x: torch.Tensor,
        attn: torch.Tensor,
        prompt: torch.Tensor,
        window: tuple[int, int],
        cache: KVCache | None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits (b, W, V) at the `window` positions and the tapped hidden states (b, T, D).

        Guided if cfg_scale > 0; `cache` records this forward or restricts it to a span.
        """
        if self.cfg_scale > 0:
            uncond = torch.where(prompt, backbone.mask_id, x)  # prompt replaced by masks
            out = backbone.decode(torch.cat([x, uncond]), torch.cat([attn, attn]), window)
            cond, un = out.logits.chunk(2)
            return un + (self.cfg_scale + 1) * (cond - un), out.hidden[: len(x)]
        out = backbone.decode(x, attn, window, cache)
        return out.logits, out.hidden

    @torch.no_grad()
    def generate(
        self,
        backbone: Backbone,
        prompt_ids: torch.Tensor,
        prompt_mask: torch.Tensor | None = None,
        head: Head | None = None,
        generator: torch.Generator | None = None,
    ) -> DecodeResult:
        """Decode a batch.

        Args:
            backbone: The (frozen) DLM.
            prompt_ids: (B, P) left-padded prompt tokens.
            prompt_mask: (B, P) bool, True at real prompt tokens (None = no padding).
            head: Correction head, required by policies that use one.
            generator: Randomness for temperature > 0 and random policies.

        Returns:
            The responses with per-row NFE and remask counts.
        """
        if self.policy.uses_head and head is None:
            raise ValueError(f"{type(self.policy).__name__} needs a correction head")
        b_all, p_len = prompt_ids.shape
        dev, mask_id, bl = prompt_ids.device, backbone.mask_id, self.block_length
        if prompt_mask is None:
            prompt_mask = torch.ones_like(prompt_ids, dtype=torch.bool)
        canvas = torch.full((b_all, self.gen_length), mask_id, dtype=torch.long, device=dev)
        x = torch.cat([prompt_ids, canvas], dim=1)  # (B, T)
        attn = torch.cat([prompt_mask.bool(), torch.ones_like(canvas, dtype=torch.bool)], dim=1)
        is_prompt = torch.zeros_like(x, dtype=torch.bool)
        is_prompt[:, :p_len] = prompt_mask.bool()
        pos = torch.arange(x.shape[1], device=dev)  # (T,)
        nfe = torch.zeros(b_all, dtype=torch.long, device=dev)
        step = torch.zeros_like(nfe)  # decoding steps per row (CFG does not double these)
        remasks = torch.zeros_like(nfe)
        edits, events = torch.zeros_like(nfe), []
        editing = self.policy.edit_threshold is not None
        last_remask = torch.full_like(x, -(10**9))
        done = torch.zeros(b_all, dtype=torch.bool, device=dev)
        num_blocks = -(-self.gen_length // bl)
        max_block_steps = self.max_steps_factor * self.schedule.plain_steps(bl, num_blocks)
        cost = 2 if self.cfg_scale > 0 else 1
        policy, cache = self.policy, DecodeCache(self.cache, self.cache_refresh)
        full_window = self.full_canvas_noise and self.temperature > 0

        for block in range(num_blocks):
            lo, hi = p_len + block * bl, min(p_len + (block + 1) * bl, x.shape[1])
            win_lo = max(p_len, lo - policy.block_buffer * bl)
            plan = self.schedule.plan((x[:, lo:hi] == mask_id).sum(-1), num_blocks)  # (B, S)
            step_in_block = torch.zeros_like(nfe)
            checked = torch.zeros_like(done)
            settle = torch.zeros_like(done)  # editing: the last step changed the block
            window = (0, x.shape[1]) if full_window else (win_lo, hi)  # what a step can change
            cache.start_block()
            while True:
                has_mask = (x[:, :hi] == mask_id).any(-1)  # (B,)
                stopping = ~has_mask & ~done
                if block < num_blocks - 1:
                    stopping &= (x[:, lo:hi] == backbone.eos_id).any(-1)
                judge = stopping & ~checked & (step_in_block < max_block_steps)
                judge &= policy.final_check
                active = (has_mask & ~done) | judge
                active |= settle & ~done & (step_in_block < max_block_steps)
                if not active.any():
                    break
                rows = active.nonzero(as_tuple=True)[0]  # (b,)
                xr, sib = x[rows], step_in_block[rows]
                due = policy.remask_due(step[rows], sib == 0) | judge[rows]
                due &= sib < max_block_steps  # termination guarantee
                judging = policy.uses_head and bool(due.any())
                kv = cache.step(rows, win_lo, hi, judging)
                logits, hidden = self._forward(
                    backbone, xr, attn[rows], is_prompt[rows], window, kv
                )  # (b, W, V), (b, T, D)
                p_err = None
                if judging:
                    assert head is not None
                    p_err = 1 - torch.sigmoid(head(hidden, attn[rows]).float())  # (b, T)
                x_hat, conf = widen(
                    *propose_tokens(logits, self.temperature, generator, mask_id), xr, window
                )  # (b, T) each; outside the window: the current token, confidence 0
                masked = xr == mask_id  # (b, T)
                state = StepState(
                    x=xr,
                    committed=~masked & (pos >= win_lo) & (pos < hi),
                    p_err=p_err,
                    due=due,
                    step=step[rows],
                    last_remask=last_remask[rows],
                )
                remask = policy.remask(state, generator)  # (b, T) bool or None
                cand = masked & (pos < hi)
                counts = self.schedule.counts(plan[rows], sib, cand, conf)
                if policy.commit_threshold is not None:  # threshold decoding (LLaDA2)
                    above = cand & (conf > policy.commit_threshold)
                    counts = torch.maximum(counts, above.sum(-1))
                commit = select_top(policy.commit_scores(conf, generator), cand, counts)
                x_new = torch.where(commit, x_hat, xr)
                remasked_any = torch.zeros_like(due)
                if remask is not None:
                    x_new = torch.where(remask, mask_id, x_new)
                    last_remask[rows] = torch.where(remask, step[rows][:, None], last_remask[rows])
                    remasks[rows] += remask.sum(-1)
                    remasked_any = remask.any(-1)
                if editing:
                    editable = ~masked & (pos >= lo) & (pos < hi)
                    editable &= (sib < max_block_steps)[:, None]
                    if remask is not None:
                        editable &= ~remask
                    edit = edit_positions(xr, x_hat, conf, editable, policy.edit_threshold)
                    x_new = torch.where(edit, x_hat, x_new)
                    edits[rows] += edit.sum(-1)
                    r, p = edit.nonzero(as_tuple=True)
                    events.append(torch.stack([rows[r], p - p_len, xr[r, p], x_hat[r, p]], -1))
                    settle[rows] = commit.any(-1) | edit.any(-1)
                x[rows] = x_new
                checked[rows] = judge[rows] & ~remasked_any
                nfe[rows] += cost
                step[rows] += 1
                step_in_block[rows] += 1
            if self.early_stop:
                stop = ~done & (x[:, lo:hi] == backbone.eos_id).any(-1)  # (B,)
                x[:, hi:] = torch.where(stop[:, None], backbone.eos_id, x[:, hi:])
                done |= stop
        edit_events = (
            torch.cat(events) if events else torch.zeros(0, 4, dtype=torch.long, device=dev)
        )
        return DecodeResult(
            tokens=x[:, p_len:], nfe=nfe, remasks=remasks, edits=edits, edit_events=edit_events
        )
