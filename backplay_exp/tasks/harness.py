"""`task=lm_eval`: the composed decoding model evaluated by lm-evaluation-harness tasks.

`python -m backplay_exp task=lm_eval lm_eval.tasks=[backplay_toy]` loads the backbone, head and
decoder exactly as `task=eval` does (trained and cached on first use), wraps them as lm-eval's
`backplay` model (`harness/model.py`), runs `lm_eval.simple_evaluate` on the named tasks (lm-eval's
own, the repo's `lm_eval_tasks/`, `lm_eval.include_path`) and writes `results.json` /
`samples.jsonl` as `task=eval` does (`harness/records.py`), so sweeps end in the usual report.
Code tasks are scored in the project's sandbox (`harness/code.py`). `task.devices=N` (or torchrun
/ a multi-task SLURM job) shares the documents among N processes (lm-eval's rank sharding).
docs/lm_eval.md has worked commands.
"""

from __future__ import annotations

import logging
from importlib.metadata import version
from pathlib import Path
from typing import Any

from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from backplay_exp.metrics import summarize
from backplay_exp.tasks.distributed import external_world, launch, resolved
from backplay_exp.tasks.models import decoding_model, prepare_stages
from backplay_exp.tasks.results import (
    SAMPLES_FILE,
    append_samples,
    job_signature,
    output_dir,
    write_results,
)
from backplay_exp.tasks.tracking import log_eval, run_meta, wandb_node
from backplay_exp.utils.device import resolve_device

log = logging.getLogger(__name__)


def run(cfg: DictConfig, devices: int = 1, **_: Any) -> dict[str, float]:
    """Evaluate the config's decoding model on `lm_eval.tasks`; write the run files.

    The tasks are loaded (and every configuration error raised) before any stage trains.

    Args:
        cfg: The whole job config (`lm_eval.*` says what to run, conf/task/lm_eval.yaml).
        devices: Processes that share the documents (one model replica each).
    """
    out = output_dir(cfg)
    tasks = prepare_tasks(cfg)
    uses_head = instantiate(cfg.remask).uses_head
    prepare_stages(cfg, uses_head, train=external_world()[0] == 1)
    one_process = devices == 1 and external_world()[0] == 1
    # the W&B run's name, group and config, taken here, where Hydra's runtime is
    meta = run_meta(cfg) if wandb_node(cfg) is not None else None
    # spawned ranks load their own tasks (lm-eval's task objects do not pickle)
    return launch(evaluate, devices, resolved(cfg), out, tasks if one_process else None, meta)


def prepare_tasks(cfg: DictConfig) -> Any:
    """lm-eval's tasks of `lm_eval.tasks`, code tasks routed to the sandbox (`TaskSet`)."""
    from backplay_exp.harness import taskset

    opts = cfg.lm_eval
    return taskset.prepare(
        list(opts.tasks), list(opts.data_dirs), list(opts.include_path), opts.include_defaults,
        {"backplay_benchmark": OmegaConf.to_container(cfg.benchmark, resolve=True)},
        lambda: instantiate(opts.sandbox), list(opts.sandbox_tasks), opts.allow_unsandboxed_code,
    )  # fmt: skip


def evaluate(
    fabric: Any,
    config: dict[str, Any],
    out: Path,
    tasks: Any,
    meta: dict[str, Any] | None = None,
) -> dict[str, float]:
    """Run lm-eval on this rank's documents; on rank 0, write results.json and samples.jsonl.

    Args:
        fabric: The Lightning `Fabric` of a multi-process job (None: one process).
        config: The resolved job config (`distributed.resolved`).
        out: The job directory.
        tasks: The prepared `TaskSet` (None: load it here).
        meta: The job's W&B run (`tasks/tracking.py`), None where W&B is off.
    """
    from lm_eval.utils import make_table

    from backplay_exp.harness import taskset
    from backplay_exp.harness.model import BackplayLM
    from backplay_exp.harness.stats import requests_stats

    cfg = OmegaConf.create(config)
    opts = cfg.lm_eval
    tasks = tasks or prepare_tasks(cfg)
    device = resolve_device(cfg.device) if fabric is None else fabric.device
    policy = instantiate(cfg.remask)
    backbone, head, model_info = decoding_model(cfg, policy.uses_head)
    backbone.to(device).eval()
    if head is not None:
        head.to(device).eval()

    def make_decoder(gen_length: int | None) -> Any:
        length = {} if gen_length is None else {"gen_length": gen_length}
        return instantiate(cfg.sampler, remasker=instantiate(cfg.remask), **length)

    lm = BackplayLM(
        backbone, make_decoder, head, opts.batch_size, opts.mc_num, opts.mc_rows_per_pass,
        cfg.seed, fabric,
    )  # fmt: skip
    results = taskset.evaluate(
        lm, tasks, num_fewshot=opts.num_fewshot, limit=opts.limit,
        bootstrap_iters=opts.bootstrap_iters, apply_chat_template=opts.apply_chat_template,
        fewshot_as_multiturn=opts.fewshot_as_multiturn,
        system_instruction=opts.system_instruction, fewshot_random_seed=opts.fewshot_seed,
    )  # fmt: skip
    gathered = lm.gather_object(lm.stats)
    if results is None or gathered is None:
        return {}  # not rank 0
    log.info("lm-eval results:\n%s", make_table(results))
    stats = requests_stats([s for part in gathered for s in part])
    ranks = 1 if fabric is None else lm.world_size
    return report(cfg, out, results, stats, lm, model_info, ranks, meta)


def report(
    cfg: DictConfig,
    out: Path,
    results: dict[str, Any],
    stats: dict[tuple[str, int], dict[str, Any]],
    lm: Any,
    model_info: dict[str, Any],
    ranks: int,
    meta: dict[str, Any] | None = None,
) -> dict[str, float]:
    """Write samples.jsonl (every task) and results.json (the first task's metric); metrics.

    The first task's records and metric are also the job's W&B run (`meta`, if W&B is on).
    """
    from backplay_exp.harness import records

    job = job_signature(cfg)
    tasks = list(results["results"])
    primary = None
    path = out / SAMPLES_FILE
    path.write_text("")
    for task in tasks:
        key = records.metric_key(results["results"][task], cfg.lm_eval.metric, task)
        rows = records.sample_records(task, results["samples"][task], key, stats)
        append_samples(path, (r | {"config_signature": job} for r in rows))
        if primary is None:
            primary = (task, key, rows)
    task, key, rows = primary
    metrics = summarize(rows) | {"accuracy": float(results["results"][task][key])}
    decoder = lm.decoder
    payload = {
        "task": "lm_eval",
        "benchmark": task,
        "metric": key,
        "convention": f"lm_eval:{task}:{results['n-shot'].get(task, 0)}shot",
        "backbone": getattr(lm.backbone, "name", type(lm.backbone).__name__),
        **model_info,
        "remask": decoder.name,
        "tokens_per_step": decoder.tokens_per_step,
        **decoder.describe(),
        "ranks": ranks,
        **metrics,
        "lm_eval": records.scores(results),
        "lm_eval_version": version("lm-eval"),
    }
    write_results(cfg, payload)
    log_eval(cfg, out, payload, rows, meta)
    log.info("%s (%s): %.3f, NFE %.1f", task, key, metrics["accuracy"], metrics["nfe_mean"])
    return metrics
