"""The project's composed decoding model as an lm-evaluation-harness `LM` (`--model backplay`).

lm-eval hands the model three kinds of requests (its docs/model_guide.md):

- `generate_until`: decoded in batches by the project's `Decoder` (any remask policy, commit
  rule, cache, and the trained head), each request's `max_gen_toks` mapped onto a canvas of whole
  blocks, the text cut at its first EoS and then at its `until` strings (`generation.py`);
- `loglikelihood`: LLaDA's Monte Carlo ELBO of the continuation (`likelihood.py`), so
  multiple-choice tasks run; `is_greedy` is always False (LLaDA's `is_check_greedy=False`,
  which its published numbers use);
- `loglikelihood_rolling`: not defined for a masked diffusion LM (`ROLLING`).

Per request it keeps the decoder's forward passes (NFE), remasks and edits (`stats.py`), which
`task=lm_eval` joins with lm-eval's per-sample scores. Across ranks (lm-eval shards the documents
by `rank`/`world_size`) it gathers through the Lightning `Fabric` of `tasks/distributed.py`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import torch
from lm_eval.api.instance import Instance
from lm_eval.api.model import LM
from lm_eval.api.registry import register_model
from tqdm.auto import tqdm

from backplay_exp.backbones.base import Backbone
from backplay_exp.data.collate import encode_prompts, response_texts, token_ids
from backplay_exp.harness.generation import (
    batches_by_canvas,
    canvas_length,
    cut_at_stops,
    stop_strings,
)
from backplay_exp.harness.likelihood import mc_loglikelihood
from backplay_exp.harness.stats import RequestLog
from backplay_exp.samplers.decoder import Decoder, Head
from backplay_exp.utils.seeding import batch_generator

log = logging.getLogger(__name__)

ROLLING = (
    "loglikelihood_rolling (perplexity tasks such as wikitext) needs the likelihood of a whole "
    "text, chunked left to right; a masked diffusion LM has only the ELBO of a continuation "
    "given a context (loglikelihood), so it is not implemented: use generation or "
    "multiple-choice tasks"
)
# lm-eval's sampling switches, which the configured sampler (sampler.temperature) overrides
SAMPLING_KWARGS = ("do_sample", "temperature", "top_p", "top_k")


@register_model("backplay")
class BackplayLM(LM):
    """lm-eval's view of a backbone, its decoder and (for BackPlay) its correction head.

    Args:
        backbone: The DLM, on its device, in eval mode.
        make_decoder: Builds the configured decoder for a canvas length (None: the configured
            `gen_length`); `task=lm_eval` passes `instantiate(cfg.sampler, ...)`.
        head: The correction head, if the remask policy reads one.
        batch_size: Generation requests decoded together.
        mc_num: Monte Carlo samples per loglikelihood request.
        mc_rows_per_pass: Samples (rows) per forward pass of the loglikelihood estimate.
        seed: Seeds the decoding batches (as `task=eval`) and the Monte Carlo draws.
        fabric: The Lightning `Fabric` of a multi-process job (None: one process).
    """

    def __init__(
        self,
        backbone: Backbone,
        make_decoder: Callable[[int | None], Decoder],
        head: Head | None = None,
        batch_size: int = 32,
        mc_num: int = 128,
        mc_rows_per_pass: int = 32,
        seed: int = 0,
        fabric: Any = None,
    ) -> None:
        super().__init__()
        self.backbone, self.head, self.make_decoder = backbone, head, make_decoder
        self.decoder = make_decoder(None)
        self._decoders = {self.decoder.gen_length: self.decoder}
        self.batch_size, self.seed = int(batch_size), int(seed)
        self.mc_num, self.mc_rows_per_pass = int(mc_num), int(mc_rows_per_pass)
        self.fabric = fabric
        if fabric is not None:
            self._rank, self._world_size = fabric.global_rank, fabric.world_size
        self._device = next(backbone.parameters()).device
        self.log = RequestLog()
        self._said: set[str] = set()

    def generate_until(self, requests: list[Instance], disable_tqdm: bool = False) -> list[str]:
        """Decode every request's context; the text up to EoS, cut at its `until` strings."""
        contexts = [r.args[0] for r in requests]
        kwargs = [dict(r.args[1] or {}) for r in requests]
        canvases = [self._canvas(kw) for kw in kwargs]
        tok, eos = self.backbone.tokenizer, self.backbone.eos_id
        out = [""] * len(requests)
        plan = batches_by_canvas(canvases, self.batch_size)
        for canvas, index, members in tqdm(plan, desc="lm-eval generate", disable=disable_tqdm):
            ids, mask = encode_prompts(tok, [contexts[i] for i in members])
            generator = batch_generator(self.seed, index, self._device)
            start = time.perf_counter()
            result = self._decoder(canvas).generate(
                self.backbone, ids.to(self._device), mask.to(self._device), self.head, generator
            )
            wall = (time.perf_counter() - start) / len(members)
            texts, lengths = response_texts(tok, result.tokens, eos)
            counts = zip(
                result.nfe.tolist(), result.remasks.tolist(), result.edits.tolist(), strict=True
            )
            for row, (i, (nfe, remasks, edits)) in enumerate(zip(members, counts, strict=True)):
                out[i] = cut_at_stops(texts[row], stop_strings(kwargs[i]))
                self.log.add(requests[i], nfe, remasks, edits, int(lengths[row]), wall, canvas)
        return out

    def _canvas(self, gen_kwargs: dict) -> int:
        """The canvas of one request (its rounding, and sampling asked of us, logged once)."""
        asked = {k: gen_kwargs[k] for k in SAMPLING_KWARGS if gen_kwargs.get(k)}
        if asked:
            self._say(
                f"sampling:{sorted(asked.items())}",
                "lm-eval asks for %s; the configured sampler decides (sampler.temperature=%s)",
                asked,
                self.decoder.temperature,
            )
        budget = gen_kwargs.get("max_gen_toks")
        block = self.decoder.block_length
        canvas = canvas_length(budget, self.decoder.gen_length, block)
        self._say(
            f"canvas:{budget}",
            "max_gen_toks=%s -> a canvas of %d tokens (%.4g blocks of %d)",
            "none (the configured gen_length)" if budget is None else budget,
            canvas,
            canvas / block,
            block,
        )
        return canvas

    def _decoder(self, canvas: int) -> Decoder:
        if canvas not in self._decoders:
            self._decoders[canvas] = self.make_decoder(canvas)
        return self._decoders[canvas]

    def loglikelihood(
        self, requests: list[Instance], disable_tqdm: bool = False
    ) -> list[tuple[float, bool]]:
        """LLaDA's Monte Carlo ELBO of each continuation; `is_greedy` is always False."""
        pairs = [self._encode_pair(*r.args) for r in requests]
        generator = torch.Generator().manual_seed(self.seed)
        chunk = max(1, self.batch_size)
        out: list[tuple[float, bool]] = []
        for start in tqdm(
            range(0, len(pairs), chunk), desc="lm-eval loglikelihood", disable=disable_tqdm
        ):
            part = pairs[start : start + chunk]
            began = time.perf_counter()
            estimates = mc_loglikelihood(
                self._logits,
                [ctx + cont for ctx, cont in part],
                [len(cont) for _, cont in part],
                self.backbone.mask_id,
                self.backbone.pad_id,
                self.mc_num,
                self.mc_rows_per_pass,
                generator,
                self._device,
            )
            wall = (time.perf_counter() - began) / len(part)
            for offset, ((_, cont), value) in enumerate(zip(part, estimates.tolist(), strict=True)):
                self.log.add(requests[start + offset], self.mc_num, 0, 0, len(cont), wall, None)
                out.append((float(value), False))
        return out

    def loglikelihood_rolling(
        self, requests: list[Instance], disable_tqdm: bool = False
    ) -> list[float]:
        """Not defined for a masked diffusion LM (`ROLLING` says why)."""
        raise NotImplementedError(ROLLING)

    def _logits(
        self, tokens: torch.Tensor, attention: torch.Tensor, window: tuple[int, int]
    ) -> torch.Tensor:
        with torch.no_grad():
            return self.backbone.decode(tokens, attention, window).logits

    def _encode_pair(self, context: str, continuation: str) -> tuple[list[int], list[int]]:
        """Token ids of the context and of the continuation.

        The context's trailing spaces move to the continuation, and the continuation is what
        the whole text adds to the context's tokens (as lm-eval's HF model encodes pairs).
        """
        spaces = len(context) - len(context.rstrip())
        if spaces:
            context, continuation = context[:-spaces], context[-spaces:] + continuation
        tok = self.backbone.tokenizer
        whole, ctx = token_ids(tok, [context + continuation, context])
        if whole[: len(ctx)] != ctx or len(whole) == len(ctx):
            return ctx, token_ids(tok, [continuation])[0]
        return ctx, whole[len(ctx) :]

    @property
    def stats(self) -> list[dict[str, Any]]:
        """One row per request decoded (NFE, remasks, edits, tokens, wall time, canvas)."""
        return self.log.rows

    def _say(self, key: str, message: str, *args: Any) -> None:
        """Log `message` once per `key` (on rank 0)."""
        if key not in self._said:
            self._said.add(key)
            if self.rank == 0:
                log.info(message, *args)

    def apply_chat_template(
        self, chat_history: list[dict[str, str]], add_generation_prompt: bool = True
    ) -> str:
        """The chat as the backbone's tokenizer renders it (lm-eval's `--apply_chat_template`).

        Raises:
            ValueError: if the tokenizer has no chat template.
        """
        tok = self.backbone.tokenizer
        if not getattr(tok, "chat_template", None):
            raise ValueError(
                f"the tokenizer of backbone {self.tokenizer_name} has no chat template: "
                "set lm_eval.apply_chat_template=false"
            )
        return tok.apply_chat_template(
            chat_history, tokenize=False, add_generation_prompt=add_generation_prompt
        )

    @property
    def tokenizer_name(self) -> str:
        """The tokenizer's name (lm-eval fingerprints chat-template request caches with it)."""
        tok = self.backbone.tokenizer
        name = getattr(tok, "name_or_path", "") or getattr(self.backbone, "name", "backbone")
        return str(name).replace("/", "__")

    def chat_template(self, chat_template: bool | str = False) -> str | None:
        """The tokenizer's chat template ("" without one)."""
        return getattr(self.backbone.tokenizer, "chat_template", None) or ""

    def get_model_info(self) -> dict[str, Any]:
        """What lm-eval records of the model in its results' `config`."""
        return {
            "backbone": getattr(self.backbone, "name", type(self.backbone).__name__),
            "remask": self.decoder.name,
            "tokens_per_step": self.decoder.tokens_per_step,
            "block_length": self.decoder.block_length,
            "mc_num": self.mc_num,
        }

    def all_gather(self, tensor: torch.Tensor) -> torch.Tensor:
        """(world, ...) every rank's `tensor`."""
        return tensor if self.fabric is None else self.fabric.all_gather(tensor)

    def gather_object(self, obj: Any, dst: int = 0) -> list[Any] | None:
        """Every rank's `obj`, on rank `dst` (None elsewhere)."""
        if self.fabric is None:
            return [obj]
        gathered: list[Any] = [None] * self.world_size
        torch.distributed.all_gather_object(gathered, obj)
        return gathered if self.rank == dst else None

    def barrier(self) -> None:
        """Wait for every rank."""
        if self.fabric is not None:
            self.fabric.barrier()
