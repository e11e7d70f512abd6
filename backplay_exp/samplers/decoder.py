"""The semi-autoregressive denoising loop: a short driver over swappable components.

METHOD.md section 6; `docs/decoding.md` states each component's contract. The response canvas of
`gen_length` masks is split into blocks of `block_length`. Each step is one forward pass
(NFE += 1 per row; classifier-free guidance makes it 2), after which:

- the **remasker** (`remask`) may send committed tokens of its look-back window back under the
  mask (BackPlay's head rule, random, none);
- the **commit rule** (`sampler/commit`: how many; `sampler/order`: which first) commits the best
  masks at or left of the current block;
- the **editor** (`sampler/editor`) may replace visible tokens of the block (T2T edits);
- the **stop rule** (`sampler/stop`) says which rows take another step: the step cap, the final
  check, early stop on EoS;
- the **cache policy** (`sampler/cache`) says which span each forward recomputes.

A **trace recorder** (`generate(..., trace=)`, `samplers/trace/`) sees each step's forward and
decisions; the default, `NoTrace`, does nothing.

Rows are batched and finish independently; prompts are left-padded and the padding is masked out
of attention. Only positions from the look-back window's start through the current block can
change in a step, so the LM head, the softmax and the proposal run there alone (windowed
outputs; with `full_canvas_noise` and a temperature, over the whole sequence as LLaDA's
generate() draws its noise).
"""

from __future__ import annotations

import inspect
from typing import Any

import torch

from backplay_exp.backbones.base import Backbone
from backplay_exp.samplers.cache import NoCache
from backplay_exp.samplers.commit import FixedK, Schedule
from backplay_exp.samplers.editors import NoEditor
from backplay_exp.samplers.order import ConfidenceOrder
from backplay_exp.samplers.remaskers import NoRemask
from backplay_exp.samplers.select import propose_tokens, widen
from backplay_exp.samplers.state import DecodeResult, DecodeState, Head, Step
from backplay_exp.samplers.stop import StopRule
from backplay_exp.samplers.trace.recorder import NoTrace
from backplay_exp.transformer.kv_cache import KVCache

__all__ = ["DecodeResult", "Decoder", "Head"]


def describe_component(component: object) -> dict[str, Any]:
    """`{_target_, <its constructor's parameters>}`: what results.json records of a component."""
    kind = type(component)
    names = [n for n in inspect.signature(kind.__init__).parameters if n != "self"]
    params = {n: getattr(component, n) for n in names if hasattr(component, n)}
    return {"_target_": f"{kind.__module__}.{kind.__qualname__}", **params}


class Decoder:
    """Batched semi-autoregressive sampler composed of the components in the module doc.

    Args:
        remasker: Which committed tokens go back under the mask (config group `remask`).
        gen_length: Response canvas length.
        block_length: Semi-autoregressive block length.
        tokens_per_step: The paper's k, which the commit rule reads (a commit rule with
            another k is an error); None for a commit rule without one (LLaDA's steps).
        commit: How many masks a step commits (None: `FixedK(tokens_per_step)`).
        order: Which masks first (None: the most confident, `ConfidenceOrder`).
        editor: Token edits (None: `NoEditor`).
        cache: Key/value cache policy (None: `NoCache`).
        stop: Step cap, final check, early stop (None: `StopRule()`).
        temperature: Gumbel temperature of the candidate tokens (0 = argmax).
        cfg_scale: Classifier-free guidance weight w (0 disables it).
        full_canvas_noise: With temperature > 0, draw the Gumbel noise (and compute logits)
            over the whole sequence, as LLaDA's generate() does, so that its random stream
            and tokens are reproduced; False draws it only where a step can commit.
    """

    def __init__(
        self,
        remasker: NoRemask,
        gen_length: int,
        block_length: int,
        tokens_per_step: int | None = 1,
        commit: Schedule | None = None,
        order: ConfidenceOrder | None = None,
        editor: NoEditor | None = None,
        cache: NoCache | None = None,
        stop: StopRule | None = None,
        temperature: float = 0.0,
        cfg_scale: float = 0.0,
        full_canvas_noise: bool = False,
    ) -> None:
        if gen_length < 1 or block_length < 1:
            raise ValueError("gen_length and block_length must be >= 1")
        if block_length > gen_length:
            raise ValueError(f"block_length={block_length} exceeds gen_length={gen_length}")
        commit = check_commit(commit, tokens_per_step)
        commit.check(gen_length, block_length)
        cache = check_component("cache", cache, NoCache)
        if cfg_scale > 0 and not cache.supports_guidance:
            raise ValueError(
                "classifier-free guidance runs a second, prompt-masked pass that the cache does "
                "not hold: use sampler/cache=none with sampler.cfg_scale > 0"
            )
        self.remasker, self.commit, self.cache = remasker, commit, cache
        self.order = check_component("order", order, ConfidenceOrder)
        self.editor = check_component("editor", editor, NoEditor)
        self.num_blocks = -(-gen_length // block_length)
        plain = commit.plain_steps(block_length, self.num_blocks)
        self.stop = check_component("stop", stop, StopRule).bind(plain)
        self.tokens_per_step = commit.tokens_per_step
        self.gen_length, self.block_length = gen_length, block_length
        self.temperature, self.cfg_scale = temperature, cfg_scale
        self.full_canvas_noise = full_canvas_noise
        self.cost = 2 if cfg_scale > 0 else 1  # forward passes per step

    @property
    def name(self) -> str:
        """The decoding arm as reports call it: the remasker, else the editor, else the order."""
        editing = type(self.editor) is not NoEditor
        if type(self.remasker) is not NoRemask:
            return self.remasker.name + ("+edit" if editing else "")
        return self.editor.name if editing else self.order.name

    def describe(self) -> dict[str, Any]:
        """How this decoder commits, remasks, edits, caches and stops (written to results.json)."""
        parts = ("commit", "order", "remasker", "editor", "cache", "stop")
        return {
            "schedule": self.commit.name,
            "commit_threshold": getattr(self.commit, "threshold", None),
            "cache": self.cache.name,
            "cache_refresh": "judge" if self.cache.refresh_on_judge else "block",
            "decoder": {p: describe_component(getattr(self, p)) for p in parts},
        }

    @torch.no_grad()
    def generate(
        self,
        backbone: Backbone,
        prompt_ids: torch.Tensor,
        prompt_mask: torch.Tensor | None = None,
        head: Head | None = None,
        generator: torch.Generator | None = None,
        trace: NoTrace | None = None,
    ) -> DecodeResult:
        """Decode a batch.

        Args:
            backbone: The (frozen) DLM.
            prompt_ids: (B, P) left-padded prompt tokens.
            prompt_mask: (B, P) bool, True at real prompt tokens (None = no padding).
            head: Correction head, required by remaskers that use one.
            generator: Randomness for temperature > 0 and random orders and remaskers.
            trace: What records each step (None: `NoTrace`, nothing; `TraceRecorder`: a
                record per row and step). It changes no token.

        Returns:
            The responses with per-row NFE, remask and edit counts.
        """
        if self.remasker.uses_head and head is None:
            raise ValueError(f"{type(self.remasker).__name__} needs a correction head")
        state = DecodeState.start(prompt_ids, prompt_mask, self.gen_length, backbone.mask_id)
        look_back = self.remasker.block_buffer * self.block_length
        eos, final_check = backbone.eos_id, self.remasker.final_check
        trace = NoTrace() if trace is None else trace
        self.cache.reset(backbone)
        head = trace.head(self.cache.head(head))
        for lo, hi in state.blocks(self.block_length):
            masks = state.enter_block(lo, hi, max(state.prompt_len, lo - look_back))
            state.plan = self.commit.plan(masks, self.num_blocks)  # (B, S)
            self.cache.start_block()
            while (rows := self.stop.rows(state, eos, final_check)) is not None:
                step = self._step(backbone, state, rows, generator, trace)
                remask = self.remasker.select(step, head, generator)  # (b, T) bool, each
                scores = self.order.scores(step.conf, generator)
                commit = self.commit.select(state.plan[rows], step, scores)
                editable = step.visible_block & step.uncapped[:, None] & ~remask
                edit = self.editor.select(step, editable)
                unsettled = self.editor.unsettled(commit, edit)  # (b,)
                state.apply(step, commit, remask, edit, unsettled, self.cost)
                trace.step(state, step, commit, remask, edit)
            self.stop.end_block(state, eos)
        self.cache.release()
        return trace.done(state.result())

    def _step(
        self,
        backbone: Backbone,
        state: DecodeState,
        rows: torch.Tensor,
        generator: torch.Generator | None,
        trace: NoTrace,
    ) -> Step:
        """The forward pass of `rows` (b,) and its proposals: the step's view."""
        wanted = self.remasker.due(state.step[rows], state.in_block[rows] == 0)  # (b,)
        due = self.stop.due(state, rows, wanted)
        kv, window = self.cache.step(state, rows, self.remasker.judges(due))
        if self.full_canvas_noise and self.temperature > 0:
            window = (0, state.x.shape[1])  # LLaDA draws its noise over the whole canvas
        x = state.x[rows]  # (b, T)
        logits, hidden = self._forward(
            backbone, x, state.attn[rows], state.is_prompt[rows], window, kv
        )
        trace.forward(state, rows, kv, window, logits)
        proposal = propose_tokens(logits, self.temperature, generator, backbone.mask_id)
        return state.view(rows, due, hidden, *widen(*proposal, x, window))

    def _forward(
        self,
        backbone: Backbone,
        x: torch.Tensor,
        attn: torch.Tensor,
        prompt: torch.Tensor,
        window: tuple[int, int] | torch.Tensor,
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


def check_commit(commit: Schedule | None, tokens_per_step: int | None) -> Schedule:
    """The commit rule (`FixedK(tokens_per_step)` if None), checked against the paper's k."""
    if commit is None:
        if tokens_per_step is None:
            raise ValueError("set sampler.tokens_per_step or give the sampler a commit rule")
        return FixedK(tokens_per_step)
    commit = check_component("commit", commit, Schedule)
    if (
        None not in (tokens_per_step, commit.tokens_per_step)
        and commit.tokens_per_step != tokens_per_step
    ):
        raise ValueError(
            f"sampler.commit commits {commit.tokens_per_step} tokens per step but "
            f"sampler.tokens_per_step={tokens_per_step}: set sampler.tokens_per_step (the commit "
            "rule reads it) instead of the commit rule's own k"
        )
    return commit


def check_component(role: str, component: Any, base: type) -> Any:
    """`component` (a `base()` if None), or a TypeError naming the config group to fix."""
    if component is None:
        return base()
    if not isinstance(component, base):
        raise TypeError(
            f"sampler.{role} is a {type(component).__name__}, not a {base.__name__}: pick an "
            f"option of the config group with sampler/{role}=<option> (the old string keys "
            "sampler.cache / sampler.cache_refresh are now the group sampler/cache)"
        )
    return component
