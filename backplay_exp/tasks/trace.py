r"""`task=trace`: one problem decoded step by step, by each decoder to compare, side by side.

    python -m backplay_exp task=trace task.problem=17 sampler.tokens_per_step=4 \
        'task.decoders=["remask=confidence","remask=backplay_toy"]'

writes `trace.jsonl` (the records, docs/decoding.md "Reading a trace"), `trace.html` (a page
that opens offline) and `trace.png` (the same as a figure) into the job directory. Each entry
of `task.decoders` is a list of config overrides (space-separated) laid over this job's own:
the job's config is composed again with them, so that a preset that reaches into other groups
(`remask=t2t_s` sets `sampler/commit` and `sampler/editor`) is what it is on the command line.
No entry: the job's own decoder alone. The problem is an index into the benchmark's problems
(`task.problem=17`) or a problem id; it is decoded in the batch, with the seeded generator,
that `task=eval` decodes it in (the same `batch_size`), so its trace is the eval's decode of
it. `task.prompt="..."` decodes a prompt of your own instead (alone; nothing to score).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf, open_dict

from backplay_exp.benchmarks.base import Problem
from backplay_exp.data.collate import encode_prompts, response_texts
from backplay_exp.samplers.decoder import Decoder
from backplay_exp.samplers.trace.files import write_trace
from backplay_exp.samplers.trace.recorder import TraceRecorder
from backplay_exp.samplers.trace.records import decode_header, trace_records
from backplay_exp.tasks.eval import decode_batch
from backplay_exp.tasks.models import decoding_model, prepare_stages
from backplay_exp.tasks.results import output_dir
from backplay_exp.utils.device import resolve_device
from backplay_exp.utils.seeding import batch_generator

log = logging.getLogger(__name__)
CONF = Path(__file__).resolve().parents[2] / "conf"


def override_key(override: str) -> str:
    """The key an override sets (`+sampler.k=2` -> `sampler.k`, `remask=x` -> `remask`)."""
    return override.split("=", 1)[0].lstrip("~+")


def job_overrides(cfg: DictConfig) -> list[str]:
    """This job's command-line overrides, but Hydra's own and `task.decoders`."""
    if "hydra" in cfg:  # composed with the Hydra config (tests)
        given = list(cfg.hydra.overrides.task)
    elif HydraConfig.initialized():
        given = list(HydraConfig.get().overrides.task)
    else:
        given = []
    skip = ("hydra", "task.decoders")
    return [o for o in given if not override_key(o).startswith(skip)]


def compose_config(overrides: list[str]) -> DictConfig:
    """The root config with `overrides` (inside a Hydra app, on its search path)."""
    if GlobalHydra.instance().is_initialized():
        return compose("config", overrides=overrides)
    with initialize_config_dir(str(CONF), version_base="1.3"):
        return compose("config", overrides=overrides)


def decoder_configs(
    cfg: DictConfig, decoders: Sequence[str]
) -> list[tuple[str | None, DictConfig]]:
    """(entry, config) per decoder to trace: this job's config with each entry's overrides.

    The job's `paths` carry over (its output and cache directories).
    """
    if not decoders:
        return [(None, cfg)]
    base, paths = job_overrides(cfg), OmegaConf.to_container(cfg.paths, resolve=True)
    out = []
    for entry in decoders:
        mine = entry.split()
        keys = {override_key(o) for o in mine}
        variant = compose_config([o for o in base if override_key(o) not in keys] + mine)
        with open_dict(variant):
            variant.paths = paths
        out.append((entry, variant))
    return out


def problem_index(problems: Sequence[Problem], problem: int | str) -> int:
    """The index of `problem` (an index, or a problem id) among `problems`."""
    if isinstance(problem, int):
        if not 0 <= problem < len(problems):
            raise IndexError(f"task.problem={problem}: the benchmark has {len(problems)} problems")
        return problem
    ids = [p.id for p in problems]
    if problem not in ids:
        raise KeyError(f"task.problem={problem!r} is no problem id of the benchmark: {ids[0]}, ...")
    return ids.index(problem)


def trace_decoder(
    cfg: DictConfig,
    entry: str | None,
    problem: int | str,
    prompt: str | None,
    batch_size: int,
    limit: int | None,
    top: int,
) -> list[dict[str, Any]]:
    """The trace records of one decoder (config `cfg`) on the problem (or the prompt)."""
    policy = instantiate(cfg.remask)
    prepare_stages(cfg, policy.uses_head)
    decoder: Decoder = instantiate(cfg.sampler, remasker=policy)
    backbone, head, _ = decoding_model(cfg, policy.uses_head)
    device = resolve_device(cfg.device)
    backbone.to(device).eval()
    if head is not None:
        head.to(device).eval()
    tok, label = backbone.tokenizer, entry or decoder.name
    if prompt is not None:
        ids, mask = encode_prompts(tok, [prompt])
        recorder = TraceRecorder(top)
        out = decoder.generate(
            backbone, ids.to(device), mask.to(device), head, batch_generator(cfg.seed, 0, device),
            trace=recorder,
        )  # fmt: skip
        texts, _ = response_texts(tok, out.tokens, backbone.eos_id)
        header = decode_header(decoder, backbone, prompt, (entry or "").split())
        result = recorder.results[0] | {"completion": texts[0], "extracted": None, "correct": None}
        return trace_records(label, header, recorder.steps_of(0), result, tok)
    benchmark = instantiate(cfg.benchmark)
    benchmark.use_tokenizer(tok)
    problems = benchmark.problems()[:limit]
    index = problem_index(problems, problem)
    row, first = index % batch_size, index - index % batch_size
    recorder = TraceRecorder(top, rows=[row])
    generator = batch_generator(cfg.seed, first // batch_size, device)
    batch = problems[first : first + batch_size]
    sample = decode_batch(backbone, decoder, benchmark, batch, head, generator, recorder)[row]
    header = decode_header(
        decoder, backbone, batch[row].prompt, (entry or "").split(), problem=batch[row].id,
        index=index, answer=batch[row].answer, seed=cfg.seed, batch_size=batch_size,
    )  # fmt: skip
    keep = ("completion", "extracted", "correct")
    result = recorder.results[row] | {k: sample[k] for k in keep}
    return trace_records(label, header, recorder.steps_of(row), result, tok)


def run(
    cfg: DictConfig,
    batch_size: int,
    problem: int | str = 0,
    prompt: str | None = None,
    decoders: Sequence[str] = (),
    top: int = 3,
    limit: int | None = None,
    **_: Any,
) -> dict[str, float]:
    """Trace the problem with each decoder; write trace.jsonl, trace.html, trace.png.

    Args:
        cfg: The whole job config.
        batch_size: The eval's batch size: the problem is decoded in its eval batch.
        problem: Index into the benchmark's problems, or a problem id.
        prompt: A prompt of your own instead of a benchmark problem.
        decoders: Override lists, one per decoder to trace (empty: this job's decoder).
        top: Proposals kept per changed position (the page's hover).
        limit: The eval's problem limit (the problem list it indexes).
    """
    out = output_dir(cfg)
    records: list[dict[str, Any]] = []
    for entry, variant in decoder_configs(cfg, list(decoders)):
        records += trace_decoder(variant, entry, problem, prompt, batch_size, limit, top)
    heads = [r for r in records if r["type"] == "decode"]
    if len({h["decoder"] for h in heads}) != len(heads):
        raise ValueError("two decoders of task.decoders trace under the same label")
    name = heads[0].get("problem") or "a prompt"
    title = f"{name}: " + " vs ".join(h["decoder"] for h in heads)
    paths = write_trace(out, "trace", records, title)
    log.info("trace of %s: %s", name, ", ".join(str(p) for p in paths))
    results = [r for r in records if r["type"] == "result"]
    return {"decoders": float(len(heads))} | {
        f"nfe/{r['decoder']}": float(r["nfe"]) for r in results
    }
