"""`task=eval`: benchmark -> prompts -> sampler (+ remask policy) -> answers -> scores.

`python -m backplay_exp task=eval sampler.tokens_per_step=2` decodes the benchmark's problems with
the SFT backbone of the config (trained and cached on first use), writing `samples.jsonl` as it
goes and `results.json` at the end. Problems are decoded in fixed batches seeded by their
position, so a resumed run produces exactly what an uninterrupted one would. `task.devices=N`
(or torchrun / a multi-task SLURM job) shares the batches among N processes, one model replica
each, and merges their records into the same `samples.jsonl` (`tasks/shards.py`).
`task.trace_samples=N` also keeps step-by-step traces of N problems (`keep_traces`).
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from tqdm.auto import tqdm

from backplay_exp.backbones.base import Backbone
from backplay_exp.benchmarks.base import Benchmark, Problem
from backplay_exp.data.collate import encode_prompts, response_texts, token_ids
from backplay_exp.metrics import edit_outcomes, summarize
from backplay_exp.samplers.decoder import Decoder, Head
from backplay_exp.samplers.trace.files import (
    TRACES_DIR,
    file_stem,
    trace_pages,
    traced_problems,
    write_trace,
)
from backplay_exp.samplers.trace.recorder import NoTrace, TraceRecorder
from backplay_exp.samplers.trace.records import decode_header, trace_records
from backplay_exp.tasks.distributed import external_rank, external_world, launch, resolved
from backplay_exp.tasks.models import decoding_model, prepare_stages
from backplay_exp.tasks.results import (
    RESULTS_FILE,
    SAMPLES_FILE,
    append_samples,
    job_signature,
    output_dir,
    read_samples,
    write_results,
)
from backplay_exp.tasks.shards import merge, my_batches, read_done, shard_path
from backplay_exp.tasks.tracking import log_eval, run_meta, wandb_node
from backplay_exp.utils.device import resolve_device
from backplay_exp.utils.seeding import batch_generator

log = logging.getLogger(__name__)


def reference_tokens(
    tokenizer: Any, problems: Sequence[Problem], gen_length: int, eos_id: int
) -> torch.Tensor | None:
    """(B, gen_length) the reference responses + EoS, if every problem has one (`meta.response`)."""
    texts = [p.meta.get("response") for p in problems]
    if any(t is None for t in texts):
        return None
    ref = torch.full((len(texts), gen_length), eos_id, dtype=torch.long)
    for row, ids in enumerate(token_ids(tokenizer, texts)):
        ids = ids[:gen_length]
        ref[row, : len(ids)] = torch.tensor(ids, dtype=torch.long)
    return ref


def decode_batch(
    backbone: Backbone,
    decoder: Decoder,
    benchmark: Benchmark,
    problems: Sequence[Problem],
    head: Head | None,
    generator: torch.Generator,
    trace: NoTrace | None = None,
) -> list[dict[str, Any]]:
    """Decode and score one batch; one record per problem (the `samples.jsonl` contract).

    `trace` records the decode's steps (None: nothing, `NoTrace`).
    """
    tok = backbone.tokenizer
    device = next(backbone.parameters()).device
    ids, mask = encode_prompts(tok, [p.prompt for p in problems])
    start = time.perf_counter()
    out = decoder.generate(backbone, ids.to(device), mask.to(device), head, generator, trace)
    wall = time.perf_counter() - start
    texts, length = response_texts(tok, out.tokens, backbone.eos_id)
    completions = [benchmark.cut(t) for t in texts]
    verdicts = benchmark.score(problems, completions)
    reference = reference_tokens(tok, problems, out.tokens.shape[1], backbone.eos_id)
    fixed = broke = [None] * len(problems)
    if reference is not None:
        fixed, broke = edit_outcomes(out.edit_events, reference)
    return [
        {
            "id": p.id,
            "prompt": p.prompt,
            "completion": c,
            "answer": p.answer,
            "extracted": v.extracted,
            "correct": bool(v.correct),
            "detail": v.detail,
            "nfe": int(nfe),
            "remasks": int(r),
            "edits": int(e),
            "edits_fixed": f,
            "edits_broke": b,
            "tokens": int(n),
            "wall_s": wall / len(problems),
        }
        for p, c, v, nfe, r, e, f, b, n in zip(
            problems,
            completions,
            verdicts,
            out.nfe.tolist(),
            out.remasks.tolist(),
            out.edits.tolist(),
            fixed,
            broke,
            length.tolist(),
            strict=True,
        )
    ]


def keep_traces(
    out: Path,
    decoder: Decoder,
    backbone: Backbone,
    batch: Sequence[Problem],
    samples: list[dict[str, Any]],
    recorder: TraceRecorder,
) -> list[Path]:
    """Write the traced problems of a decoded batch into `out/traces/`; the paths written.

    Each traced problem gets `<id>.jsonl` and `<id>.html` (no figure: a page is enough to look
    at one). `samplers.trace.files.trace_pages(out)` lists the pages of the whole run.
    """
    paths = []
    assert recorder.rows is not None, "an eval traces chosen rows"
    for row in sorted(recorder.rows):
        p, sample = batch[row], samples[row]
        header = decode_header(decoder, backbone, p.prompt, problem=p.id, answer=p.answer)
        result = recorder.results[row] | {
            k: sample[k] for k in ("completion", "extracted", "correct")
        }
        steps = recorder.steps_of(row)
        records = trace_records(decoder.name, header, steps, result, backbone.tokenizer)
        paths += write_trace(out / TRACES_DIR, file_stem(p.id), records, p.id, figure=False)
    return paths


def reusable(cfg: DictConfig) -> Path | None:
    """The cached run files of an identical finished job, if there are any."""
    cached = Path(cfg.paths.cache_dir) / "eval" / job_signature(cfg)
    return cached if (cached / RESULTS_FILE).exists() else None


def copy_reused(cached: Path, out: Path) -> dict[str, Any]:
    """Copy an identical job's run files into this job's directory; its results."""
    if cached.resolve() != out.resolve():
        for name in (RESULTS_FILE, SAMPLES_FILE):
            shutil.copyfile(cached / name, out / name)
    log.info("reused the results of an identical job: %s", cached)
    return json.loads((out / RESULTS_FILE).read_text())


def remember(cfg: DictConfig, out: Path) -> None:
    """Keep this job's run files in the cache for identical later jobs."""
    cached = Path(cfg.paths.cache_dir) / "eval" / job_signature(cfg)
    cached.mkdir(parents=True, exist_ok=True)
    for name in (SAMPLES_FILE, RESULTS_FILE):  # results last: it marks the copy complete
        shutil.copyfile(out / name, cached / name)


def run(
    cfg: DictConfig,
    batch_size: int,
    limit: int | None = None,
    reuse: bool = True,
    devices: int = 1,
    trace_samples: int = 0,
    **_: Any,
) -> dict[str, float]:
    """Evaluate the config's backbone (and head) on its benchmark; write the run files.

    Args:
        cfg: The whole job config.
        batch_size: Problems decoded together.
        limit: Evaluate only the first `limit` problems.
        reuse: Take the results of an identical finished job from the cache.
        devices: Processes (one model replica each, a GPU each when CUDA is present) that
            share the problems (`tasks/shards.py`); under torchrun or a multi-task SLURM job
            the environment's processes are used instead (`tasks/distributed.py`).
        trace_samples: Keep step-by-step traces of this many problems, drawn with the seed,
            in `traces/` (`task.trace_samples=N`; a traced job decodes, it reuses nothing).
    """
    out = output_dir(cfg)
    if reuse and not trace_samples and (cached := reusable(cfg)) is not None:
        return copy_reused(cached, out) if external_rank() == 0 else {}
    uses_head = instantiate(cfg.remask).uses_head
    # stages are trained by one process, before any decoding process exists
    prepare_stages(cfg, uses_head, train=external_world()[0] == 1)
    # the W&B run's name, group and config, taken here, where Hydra's runtime is
    meta = run_meta(cfg) if wandb_node(cfg) is not None else None
    return launch(evaluate, devices, resolved(cfg), batch_size, limit, out, trace_samples, meta)


def evaluate(
    fabric: Any,
    config: dict[str, Any],
    batch_size: int,
    limit: int | None,
    out: Path,
    trace_samples: int = 0,
    meta: dict[str, Any] | None = None,
) -> dict[str, float]:
    """Decode this rank's batches; on rank 0, merge every rank's records and report.

    Args:
        fabric: The Lightning `Fabric` of a multi-process job (None: one process).
        config: The resolved job config (`distributed.resolved`).
        batch_size: Problems per batch.
        limit: Only the first `limit` problems.
        out: The job directory.
        trace_samples: Problems whose decode is traced (`keep_traces`).
        meta: The job's W&B run (`tasks/tracking.py`), None where W&B is off.
    """
    cfg = OmegaConf.create(config)
    rank, world = (0, 1) if fabric is None else (fabric.global_rank, fabric.world_size)
    device = resolve_device(cfg.device) if fabric is None else fabric.device
    policy = instantiate(cfg.remask)
    decoder: Decoder = instantiate(cfg.sampler, remasker=policy)
    backbone, head, model_info = decoding_model(cfg, policy.uses_head)
    benchmark: Benchmark = instantiate(cfg.benchmark)
    benchmark.use_tokenizer(backbone.tokenizer)  # chat-template prompts need it
    problems = benchmark.problems()[:limit]
    if not problems:
        raise ValueError(f"benchmark {benchmark.name} has no problems to evaluate")
    backbone.to(device).eval()
    if head is not None:
        head.to(device).eval()

    job = job_signature(cfg)
    done = read_done(out, job)
    path = shard_path(out, rank, world)
    mine = done if world == 1 else read_samples(path, job)
    path.write_text("")  # drop a torn line; keep only complete records
    append_samples(path, (mine[p.id] for p in problems if p.id in mine))
    batches = [problems[i : i + batch_size] for i in range(0, len(problems), batch_size)]
    traced = traced_problems([p.id for p in problems], trace_samples, cfg.seed)
    desc = f"eval {benchmark.name}" + (f" [rank {rank}/{world}]" if world > 1 else "")
    for index in tqdm(my_batches(len(batches), rank, world), desc=desc, unit="batch"):
        batch = batches[index]
        if all(p.id in done for p in batch):
            continue
        generator = batch_generator(cfg.seed, index, device)
        rows = [i for i, p in enumerate(batch) if p.id in traced]
        trace = TraceRecorder(rows=rows) if rows else None
        records = [
            r | {"config_signature": job}
            for r in decode_batch(backbone, decoder, benchmark, batch, head, generator, trace)
        ]
        if trace is not None:
            keep_traces(out, decoder, backbone, batch, records, trace)
        append_samples(path, (r for r in records if r["id"] not in done))
        done.update({r["id"]: r for r in records})
    if fabric is not None:
        fabric.barrier()  # every rank's records are on disk
    if rank != 0:
        return {}
    samples = merge(out, problems, job)
    metrics = summarize(samples)
    results = {
        "task": "eval",
        "benchmark": benchmark.name,
        "convention": benchmark.convention,
        "backbone": getattr(backbone, "name", type(backbone).__name__),
        **model_info,
        "remask": decoder.name,
        "tokens_per_step": decoder.tokens_per_step,
        **decoder.describe(),
        "ranks": world,
        **metrics,
    }
    write_results(cfg, results)
    remember(cfg, out)
    log_eval(cfg, out, results, samples, meta, trace_pages(out))
    log.info(
        "%s: accuracy %.3f, NFE %.1f", benchmark.name, metrics["accuracy"], metrics["nfe_mean"]
    )
    return metrics
